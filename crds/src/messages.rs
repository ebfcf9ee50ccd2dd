//! The messages of the CEL rules. The API server shows them when it rejects an object, and the
//! Rust validation returns the same text, so a user sees one wording wherever the check runs.

pub const KC_ONE_OF: &str =
    "set exactly one of external (an existing Kafka) and msk (an MSK cluster Tributary provisions)";
pub const KC_NO_SWITCH: &str =
    "a KafkaCluster cannot switch between external and msk; create a new KafkaCluster instead";
pub const KC_BOOTSTRAP: &str =
    "each of bootstrapServers must be host:port, e.g. broker-1.example.com:9092";
pub const KC_SASL_SECRET: &str = "sasl.secretRef is required for every mechanism but AwsMskIam: name the Secret with the user name and password";
pub const MSK_ONE_OF: &str = "set exactly one of msk.provisioned and msk.serverless";
pub const MSK_NO_SWITCH: &str = "an MSK cluster cannot switch between provisioned and serverless; create a new KafkaCluster instead";
pub const MSK_NAME_IMMUTABLE: &str = "msk.clusterName cannot be changed after creation";
pub const MSK_ARN_IMMUTABLE: &str = "msk.arn cannot be changed or removed once set";
pub const MSK_BROKERS_PER_SUBNET: &str = "brokerCount must be a multiple of the number of subnets (MSK puts the same number of brokers in each availability zone)";
pub const MSK_VERSION_IMMUTABLE: &str =
    "kafkaVersion cannot be changed: Tributary does not manage MSK version upgrades yet";
pub const MSK_STORAGE_DECREASE: &str =
    "storageGiB can only be increased: MSK cannot shrink broker storage";
pub const MSK_SUBNETS_IMMUTABLE: &str = "subnets cannot be changed after the cluster is created";
pub const MSK_AUTH_NONE: &str =
    "enable at least one of clientAuthentication.iam, scram and unauthenticated";
pub const TOPIC_NAME_IMMUTABLE: &str =
    "topicName cannot be changed: Kafka cannot rename a topic; create a new Topic instead";
pub const TOPIC_RF_IMMUTABLE: &str = "replicationFactor cannot be changed: it needs a partition reassignment, which Tributary does not do";
pub const TOPIC_CLUSTER_IMMUTABLE: &str = "clusterRef cannot be changed: a topic cannot move between clusters; create a new Topic instead";
pub const TOPIC_NAME_DOTS: &str = "topicName cannot be '.' or '..'";
pub const TOPIC_PARTITION_DECREASE: &str =
    "partitions can only be increased: Kafka cannot remove partitions";
pub const STREAM_SHARDS_MODE: &str =
    "shardCount is required when mode is Provisioned and not allowed when mode is OnDemand";
pub const STREAM_NAME_IMMUTABLE: &str =
    "streamName cannot be changed: Kinesis cannot rename a stream; create a new Stream instead";
pub const SINK_ONE_SOURCE: &str = "set exactly one of source.topicRef and source.streamRef";
pub const SINK_GROUP_KAFKA_ONLY: &str =
    "source.consumerGroup applies to Kafka topics only; remove it for a streamRef";
pub const SINK_PROPERTIES_KAFKA_ONLY: &str =
    "source.consumerProperties applies to Kafka topics only; remove it for a streamRef";
pub const SINK_SOURCE_IMMUTABLE: &str = "source.topicRef and source.streamRef cannot be changed: a Sink's position belongs to its source; create a new Sink instead";
pub const SINK_GROUP_IMMUTABLE: &str =
    "source.consumerGroup cannot be changed: the sink would lose its position";
pub const SINK_JSON_SNAPPY: &str =
    "Snappy compression is for Parquet only; use Gzip or Zstd for JsonLines";
pub const BJ_STEP_SHADOWS_INPUT: &str = "a step cannot have the same name as an input";
pub const BJ_NO_OUTPUT: &str = "at least one step needs an output, or the job writes nothing";
pub const BJ_CRON_FIELDS: &str = "schedule must have five fields (minute hour day-of-month month day-of-week), e.g. '0 2 * * *', or be a macro such as '@daily'";
pub const BJ_INPUT_NAMES_UNIQUE: &str = "input names must be unique";
pub const BJ_STEP_NAMES_UNIQUE: &str = "step names must be unique";
pub const BJ_BACKFILL_RANGE: &str = "backfill.from must not be after backfill.to";
