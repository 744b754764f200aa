{{/* The chart's name. */}}
{{- define "batch-scaler.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The prefix of every object's name. */}}
{{- define "batch-scaler.fullname" -}}
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

{{/* Labels of every object. */}}
{{- define "batch-scaler.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: batch-scaler
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}

{{/* Selector of the service's pods. */}}
{{- define "batch-scaler.selector" -}}
app.kubernetes.io/name: {{ include "batch-scaler.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: scaler
{{- end }}

{{/* Selector of the frontend's pods. */}}
{{- define "batch-scaler.frontendSelector" -}}
app.kubernetes.io/name: {{ include "batch-scaler.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: frontend
{{- end }}

{{- define "batch-scaler.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "batch-scaler.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "batch-scaler.image" -}}
{{- printf "%s:%s" .repository (.tag | default $.appVersion) }}
{{- end }}

{{/* The Secret holding the tokens. */}}
{{- define "batch-scaler.tokensSecret" -}}
{{- default (printf "%s-tokens" (include "batch-scaler.fullname" .)) .Values.auth.existingSecret }}
{{- end }}

{{/* The Secret holding the TLS certificate. */}}
{{- define "batch-scaler.tlsSecret" -}}
{{- default (printf "%s-tls" (include "batch-scaler.fullname" .)) .Values.tls.existingSecret }}
{{- end }}

{{/* Restricted security context of every container. */}}
{{- define "batch-scaler.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
{{- end }}

{{- define "batch-scaler.podSecurity" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end }}
