# The image scripts/kind-e2e.sh installs: the Tributary image plus LocalStack's well-known dummy
# credentials. LocalStack accepts any key, but the AWS SDK signs every request and needs one; in
# a real cluster the worker pods get theirs from IRSA (workers.serviceAccount.roleArn), which
# kind does not have. Never use this image against AWS.
ARG BASE=tributary:dev
FROM ${BASE}
# hadolint ignore=DL3064
ENV AWS_ACCESS_KEY_ID=test \
    AWS_SECRET_ACCESS_KEY=test
