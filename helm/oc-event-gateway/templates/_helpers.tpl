{{/*
Expand the name of the chart.
*/}}
{{- define "oc-event-gateway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Create a default fully qualified app name.
We truncate at 63 chars because some Kubernetes name fields are limited to this (by the DNS naming spec).
If release name contains chart name it will be used as a full name.
*/}}
{{- define "oc-event-gateway.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Create chart name and version as used by the chart label.
*/}}
{{- define "oc-event-gateway.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels
*/}}
{{- define "oc-event-gateway.labels" -}}
helm.sh/chart: {{ include "oc-event-gateway.chart" . }}
{{ include "oc-event-gateway.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Selector labels
*/}}
{{- define "oc-event-gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "oc-event-gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Create the name of the service account to use
*/}}
{{- define "oc-event-gateway.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "oc-event-gateway.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* ---- gateway-specific helpers below; the ones above are `helm create`'s ---- */}}

{{/*
Selector labels of one component: "gateway" (webhook ingest, and the processor unless it
is separate) or "processor". The Service selects only the gateway component.
*/}}
{{- define "oc-event-gateway.componentSelectorLabels" -}}
{{ include "oc-event-gateway.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
"kafka" when bootstrap servers are set, else "embedded".
*/}}
{{- define "oc-event-gateway.mode" -}}
{{- if trim .Values.kafka.bootstrapServers }}kafka{{ else }}embedded{{ end }}
{{- end }}

{{/*
"claim" when the data directory is a PersistentVolumeClaim, else "emptyDir".
*/}}
{{- define "oc-event-gateway.dataVolume" -}}
{{- if or (eq (include "oc-event-gateway.mode" .) "embedded") (eq .Values.persistence.kafkaMode "claim") }}claim{{ else }}emptyDir{{ end }}
{{- end }}

{{- define "oc-event-gateway.claimName" -}}
{{- default (printf "%s-data" (include "oc-event-gateway.fullname" .)) .Values.persistence.existingClaim }}
{{- end }}

{{/*
The gateway Deployment's replica count when autoscaling is off: always 1 on a claim.
*/}}
{{- define "oc-event-gateway.replicas" -}}
{{- if eq (include "oc-event-gateway.dataVolume" .) "claim" }}1{{ else }}{{ .Values.replicaCount }}{{ end }}
{{- end }}

{{- define "oc-event-gateway.autoscaling" -}}
{{- if and .Values.autoscaling.enabled (eq (include "oc-event-gateway.mode" .) "kafka") }}true{{ end }}
{{- end }}

{{/*
terminationGracePeriodSeconds: the preStop sleep, then the gateway's own drain, plus 10 s
for it to close what a batch cut short by the drain left open (at most 5 s) and exit
before Kubernetes sends SIGKILL.
*/}}
{{- define "oc-event-gateway.terminationGracePeriodSeconds" -}}
{{- add .Values.preStopSleepSeconds .Values.shutdownGraceSeconds 10 }}
{{- end }}

{{- define "oc-event-gateway.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/*
Where the shared OC token store is mounted (oc.tokenStore.existingClaim), and its file.
*/}}
{{- define "oc-event-gateway.tokenStoreMount" -}}/oc-token-store{{- end }}

{{/*
The Secret holding the console token (console.existingSecret, else existingSecret), and
where its key is mounted.
*/}}
{{- define "oc-event-gateway.consoleSecret" -}}
{{- default .Values.existingSecret .Values.console.existingSecret }}
{{- end }}

{{- define "oc-event-gateway.consoleTokenFile" -}}/etc/gateway/console/token{{- end }}

{{- define "oc-event-gateway.tokenStorePath" -}}
{{- include "oc-event-gateway.tokenStoreMount" . }}/oc-token.json
{{- end }}

{{/*
Render a config value as an environment variable string: lists are comma-separated and
whole numbers keep their integer form (values arrive as float64).
*/}}
{{- define "oc-event-gateway.envValue" -}}
{{- if kindIs "slice" . }}
{{- join "," . }}
{{- else if kindIs "float64" . }}
{{- if eq . (float64 (int64 .)) }}{{ int64 . }}{{ else }}{{ . }}{{ end }}
{{- else }}
{{- toString . }}
{{- end }}
{{- end }}

{{/*
Combinations the chart refuses, each with the reason. Included by every workload template.
*/}}
{{- define "oc-event-gateway.validate" -}}
{{- $mode := include "oc-event-gateway.mode" . }}
{{- if and (eq $mode "embedded") .Values.autoscaling.enabled }}
{{- fail "autoscaling.enabled needs Kafka mode (kafka.bootstrapServers): the embedded log lives on one volume and runs as exactly one replica" }}
{{- end }}
{{- if and (eq $mode "embedded") (gt (int .Values.replicaCount) 1) }}
{{- fail "replicaCount > 1 needs Kafka mode (kafka.bootstrapServers): the embedded log runs as exactly one replica" }}
{{- end }}
{{- if and (eq $mode "embedded") (gt (int .Values.ingest.workers) 1) }}
{{- fail "ingest.workers > 1 needs Kafka mode (kafka.bootstrapServers): the embedded log is one SQLite file that one process writes" }}
{{- end }}
{{- if and (eq $mode "embedded") .Values.processor.separate }}
{{- fail "processor.separate needs Kafka mode (kafka.bootstrapServers): in embedded mode one process owns the log" }}
{{- end }}
{{- if and (eq $mode "kafka") (eq .Values.persistence.kafkaMode "claim") (or .Values.autoscaling.enabled (gt (int .Values.replicaCount) 1)) }}
{{- fail "persistence.kafkaMode=claim keeps the spool on one ReadWriteOnce volume, so the Deployment cannot scale: set persistence.kafkaMode=emptyDir, or replicaCount=1 and autoscaling.enabled=false" }}
{{- end }}
{{- if and (hasPrefix "SASL_" .Values.kafka.securityProtocol) (not .Values.existingSecret) (not .Values.kafka.sasl.passwordSecret.name) }}
{{- fail "kafka.securityProtocol uses SASL: put GATEWAY_KAFKA_SASL_PASSWORD in existingSecret or name a secret in kafka.sasl.passwordSecret" }}
{{- end }}
{{- if and (hasPrefix "SASL_" .Values.kafka.securityProtocol) (not .Values.kafka.sasl.username) }}
{{- fail "kafka.securityProtocol uses SASL: set kafka.sasl.username" }}
{{- end }}
{{- if and .Values.kafka.tls.existingSecret (not (hasSuffix "SSL" .Values.kafka.securityProtocol)) }}
{{- fail "kafka.tls.existingSecret is set but kafka.securityProtocol is not SSL or SASL_SSL" }}
{{- end }}
{{- if and (or .Values.kafka.tls.certKey .Values.kafka.tls.keyKey) (not (and .Values.kafka.tls.certKey .Values.kafka.tls.keyKey)) }}
{{- fail "kafka.tls: set certKey and keyKey together (mutual TLS needs both)" }}
{{- end }}
{{- if and (or .Values.kafka.tls.certKey .Values.kafka.tls.keyKey) (not .Values.kafka.tls.existingSecret) }}
{{- fail "kafka.tls.certKey/keyKey name keys of kafka.tls.existingSecret, which is empty" }}
{{- end }}
{{- if and .Values.oc.tokenStore.existingClaim (hasKey .Values.config "GATEWAY_OC_TOKEN_STORE") }}
{{- fail "oc.tokenStore.existingClaim sets GATEWAY_OC_TOKEN_STORE to the shared claim: remove it from config" }}
{{- end }}
{{- if and .Values.console.enabled (not (include "oc-event-gateway.consoleSecret" .)) }}
{{- fail "console.enabled needs its token: name the Secret holding it in console.existingSecret (or set existingSecret)" }}
{{- end }}
{{- if and .Values.metrics.prometheusRule.enabled (not .Values.metrics.prometheusRule.runbookBaseUrl) }}
{{- fail "metrics.prometheusRule.runbookBaseUrl is required: the URL of helm/README.md in your repository (each alert links to its section)" }}
{{- end }}
{{- end }}
