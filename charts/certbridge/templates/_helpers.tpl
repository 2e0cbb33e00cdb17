{{/* The chart name, or nameOverride. */}}
{{- define "certbridge.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every object: the release name if it contains the chart name,
else <release>-certbridge, truncated to 63. Services append up to
"-issuer-metrics" (15 characters) and must stay DNS labels (63), so a longer
prefix fails here rather than at the API server.
*/}}
{{- define "certbridge.fullname" -}}
{{- $full := "" }}
{{- if .Values.fullnameOverride }}
{{- $full = .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- $full = .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $full = printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- if gt (len $full) 48 }}
{{- fail (printf "the name prefix %q is %d characters; Service names such as %s-issuer-metrics must fit in 63, so keep it to 48: use a shorter release name or set fullnameOverride" $full (len $full) $full) }}
{{- end }}
{{- $full }}
{{- end }}

{{- define "certbridge.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Common labels; call with (dict "ctx" $ "component" "webhook"). */}}
{{- define "certbridge.labels" -}}
helm.sh/chart: {{ include "certbridge.chart" .ctx }}
{{ include "certbridge.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
{{- end }}

{{/* Selector labels; call with (dict "ctx" $ "component" "webhook"). */}}
{{- define "certbridge.selectorLabels" -}}
app.kubernetes.io/name: {{ include "certbridge.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- if .component }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- end }}

{{/* A digest pins the image: a moved tag cannot change what runs. */}}
{{- define "certbridge.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{- define "certbridge.webhookName" -}}
{{- include "certbridge.fullname" . }}-webhook
{{- end }}

{{- define "certbridge.issuerName" -}}
{{- include "certbridge.fullname" . }}-issuer
{{- end }}

{{- define "certbridge.webhookTLSSecret" -}}
{{- include "certbridge.fullname" . }}-webhook-tls
{{- end }}

{{/*
The audience of the webhook replicas' peer tokens: the release's own, so
that such a token is worth nothing to kube-apiserver or anything else.
*/}}
{{- define "certbridge.peerAudience" -}}
certbridge.io/peers/{{ .Release.Namespace }}/{{ include "certbridge.webhookName" . }}
{{- end }}

{{- define "certbridge.clusterResourceNamespace" -}}
{{- .Values.issuer.clusterResourceNamespace | default .Values.certManager.namespace }}
{{- end }}

{{/* The restricted Pod Security profile, for every pod and container. */}}
{{- define "certbridge.podSecurityContext" -}}
runAsNonRoot: true
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "certbridge.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
{{- end }}

{{/* The subject cert-manager runs as. */}}
{{- define "certbridge.certManagerSubject" -}}
- kind: ServiceAccount
  name: {{ .Values.certManager.serviceAccountName }}
  namespace: {{ .Values.certManager.namespace }}
{{- end }}
