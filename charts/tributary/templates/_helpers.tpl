{{/* Names, labels and the pieces every template shares. */}}

{{- define "tributary.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's name, with the chart's name unless it already has it; at most 40 characters so
that "-operator-metrics" and the like still fit in 63. */}}
{{- define "tributary.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "tributary.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "tributary.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tributary
{{- end -}}

{{/* Selector labels of one component: include with (dict "ctx" $ "component" "operator"). */}}
{{- define "tributary.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tributary.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "tributary.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "tributary.operatorServiceAccount" -}}
{{- if .Values.operator.serviceAccount.create -}}
{{- default (printf "%s-operator" (include "tributary.fullname" .)) .Values.operator.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.operator.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "tributary.gatewayServiceAccount" -}}
{{- if .Values.gateway.serviceAccount.create -}}
{{- default (printf "%s-gateway" (include "tributary.fullname" .)) .Values.gateway.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.gateway.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The workers' service account name; empty when they use their namespace's default. */}}
{{- define "tributary.workerServiceAccount" -}}
{{- if .Values.workers.serviceAccount.create -}}
{{- default (printf "%s-worker" (include "tributary.fullname" .)) .Values.workers.serviceAccount.name -}}
{{- else -}}
{{- .Values.workers.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The watched namespaces, comma-separated; empty in cluster mode. */}}
{{- define "tributary.watchNamespaces" -}}
{{- if eq .Values.watch.mode "namespaces" -}}
{{- if .Values.watch.namespaces -}}
{{- join "," .Values.watch.namespaces -}}
{{- else -}}
{{- .Release.Namespace -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The namespaces the gateway serves, comma-separated; empty means all. */}}
{{- define "tributary.gatewayNamespaces" -}}
{{- if .Values.gateway.namespaces -}}
{{- join "," .Values.gateway.namespaces -}}
{{- else -}}
{{- include "tributary.watchNamespaces" . -}}
{{- end -}}
{{- end -}}

{{/* Where the worker service account is created, comma-separated. */}}
{{- define "tributary.workerNamespaces" -}}
{{- if .Values.workers.serviceAccount.namespaces -}}
{{- join "," .Values.workers.serviceAccount.namespaces -}}
{{- else if eq .Values.watch.mode "namespaces" -}}
{{- include "tributary.watchNamespaces" . -}}
{{- else -}}
{{- .Release.Namespace -}}
{{- end -}}
{{- end -}}

{{/* Service account annotations: the given ones plus IRSA's role ARN. Include with the
serviceAccount values. */}}
{{- define "tributary.serviceAccountAnnotations" -}}
{{- $annotations := deepCopy (default (dict) .annotations) -}}
{{- if .roleArn -}}
{{- $_ := set $annotations "eks.amazonaws.com/role-arn" .roleArn -}}
{{- end -}}
{{- with $annotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end -}}
{{- end -}}

{{/* The pod security context of every pod of the chart: the image's unprivileged user. */}}
{{- define "tributary.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "tributary.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The namespaced permissions of the operator, bound cluster-wide (mode cluster) or in each
watched namespace (mode namespaces). Each verb is one the controllers call: see the comments
and docs/install.md. */}}
{{- define "tributary.operatorRules" -}}
# Topic and KafkaCluster: read by the Topic and Sink controllers, finalizers patched on.
- apiGroups: [tributary.dev]
  resources: [kafkaclusters, topics]
  verbs: [get, list, watch, patch]
# Streams: watched, every Stream gets a finalizer, and the Sink controller reads the Stream
# of a Sink with a streamRef.
- apiGroups: [tributary.dev]
  resources: [streams]
  verbs: [get, list, watch, patch]
# Sinks get a finalizer with deletionPolicy Delete; BatchJobs never.
- apiGroups: [tributary.dev]
  resources: [sinks]
  verbs: [list, watch, patch]
- apiGroups: [tributary.dev]
  resources: [batchjobs]
  verbs: [list, watch]
# Status is written with server-side apply.
- apiGroups: [tributary.dev]
  resources: [kafkaclusters/status, topics/status, streams/status, sinks/status, batchjobs/status]
  verbs: [patch]
# Kafka credentials of KafkaClusters (TLS CA, SASL), by name.
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
# Why a Sink's worker or a BatchJob's run stopped: the pods' termination messages.
- apiGroups: [""]
  resources: [pods]
  verbs: [list]
# Worker configuration (server-side apply creates and updates it).
- apiGroups: [""]
  resources: [configmaps]
  verbs: [list, watch, create, patch]
# Sink workers; deleted before a Delete-policy Sink's consumer group is.
- apiGroups: [apps]
  resources: [deployments]
  verbs: [list, watch, create, patch, delete]
# BatchJob runs: one Job per scheduled time; old ones and replaced ones deleted.
- apiGroups: [batch]
  resources: [jobs]
  verbs: [list, watch, create, delete]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- end -}}
