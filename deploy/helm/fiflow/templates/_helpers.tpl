{{/* Names and labels. */}}
{{- define "fiflow.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "fiflow.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "fiflow.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "fiflow.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* Temporal's connection (temporalio envconfig variables): not secret. */}}
{{- define "fiflow.temporalConfig" -}}
TEMPORAL_ADDRESS: {{ .Values.temporal.address | quote }}
TEMPORAL_NAMESPACE: {{ .Values.temporal.namespace | quote }}
{{- if .Values.temporal.tls.enabled }}
TEMPORAL_TLS: "true"
TEMPORAL_TLS_CLIENT_CERT_PATH: /etc/fiflow/temporal-tls/tls.crt
TEMPORAL_TLS_CLIENT_KEY_PATH: /etc/fiflow/temporal-tls/tls.key
{{- if .Values.temporal.tls.ca }}
TEMPORAL_TLS_SERVER_CA_CERT_PATH: /etc/fiflow/temporal-tls/ca.crt
{{- end }}
{{- if .Values.temporal.tls.serverName }}
TEMPORAL_TLS_SERVER_NAME: {{ .Values.temporal.tls.serverName | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Every secret setting from the existing Secret, by its variable's name. */}}
{{- define "fiflow.secretEnv" -}}
{{- range .Values.secretKeys.required }}
- name: {{ . }}
  valueFrom:
    secretKeyRef:
      name: {{ $.Values.existingSecret }}
      key: {{ . }}
{{- end }}
{{- range .Values.secretKeys.optional }}
- name: {{ . }}
  valueFrom:
    secretKeyRef:
      name: {{ $.Values.existingSecret }}
      key: {{ . }}
      optional: true
{{- end }}
{{- end -}}

{{/* The environment of a long-running part: settings from the ConfigMap, secrets. */}}
{{- define "fiflow.envFrom" -}}
- configMapRef:
    name: {{ include "fiflow.fullname" . }}
{{- end -}}

{{/* The environment of a hook Job, which runs before the ConfigMap exists: inline. */}}
{{- define "fiflow.jobEnv" -}}
{{- range $name, $value := .Values.config }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- range $name, $value := (include "fiflow.temporalConfig" . | fromYaml) }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{ include "fiflow.secretEnv" . }}
{{- end -}}

{{- define "fiflow.metricsAnnotations" -}}
{{- if .Values.metrics.enabled }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .Values.metrics.port | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- end -}}

{{- define "fiflow.metricsEnv" -}}
{{- if .Values.metrics.enabled }}
- name: FIFLOW_METRICS_ADDRESS
  value: {{ printf "0.0.0.0:%v" .Values.metrics.port | quote }}
{{- end }}
{{- end -}}

{{- define "fiflow.metricsPort" -}}
{{- if .Values.metrics.enabled }}
- name: metrics
  containerPort: {{ .Values.metrics.port }}
{{- end }}
{{- end -}}

{{/* Volumes every pod has: a writable /tmp (the root file system is read-only), TLS. */}}
{{- define "fiflow.volumes" -}}
- name: tmp
  emptyDir: {}
{{- if .Values.temporal.tls.enabled }}
- name: temporal-tls
  secret:
    secretName: {{ .Values.temporal.tls.existingSecret }}
{{- end }}
{{- end -}}

{{- define "fiflow.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if .Values.temporal.tls.enabled }}
- name: temporal-tls
  mountPath: /etc/fiflow/temporal-tls
  readOnly: true
{{- end }}
{{- end -}}

{{/* The batch store the API writes and every worker reads. */}}
{{- define "fiflow.batchVolume" -}}
- name: batches
{{- if .Values.batch.existingClaim }}
  persistentVolumeClaim:
    claimName: {{ .Values.batch.existingClaim }}
{{- else }}
  emptyDir: {}
{{- end }}
{{- end -}}

{{- define "fiflow.batchMount" -}}
- name: batches
  mountPath: {{ .Values.config.FIFLOW_BATCH_DIR | default "/var/lib/fiflow/batches" }}
{{- end -}}

{{/* Pod-level settings shared by every part. */}}
{{- define "fiflow.podSpec" -}}
automountServiceAccountToken: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
