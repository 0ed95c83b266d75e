{{- define "meshdeck.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "meshdeck.fullname" -}}
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

{{- define "meshdeck.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "meshdeck.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "meshdeck.selectorLabels" -}}
app.kubernetes.io/name: {{ include "meshdeck.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "meshdeck.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "meshdeck.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "meshdeck.secretName" -}}
{{- default (include "meshdeck.fullname" .) .Values.secret.existingSecret }}
{{- end }}

{{- define "meshdeck.claimName" -}}
{{- default (printf "%s-data" (include "meshdeck.fullname" .)) .Values.persistence.existingClaim }}
{{- end }}

{{- /* Refuses settings that cannot work, saying why. */ -}}
{{- define "meshdeck.validate" -}}
{{- if not (has .Values.database.type (list "sqlite" "postgres")) }}
{{- fail (printf "database.type must be sqlite or postgres, not %q" .Values.database.type) }}
{{- end }}
{{- if and (eq .Values.database.type "sqlite") (gt (int .Values.replicaCount) 1) }}
{{- fail "replicaCount > 1 needs database.type=postgres: the embedded SQLite serves one replica" }}
{{- end }}
{{- if and (eq .Values.database.type "postgres") (not .Values.database.postgres.existingSecret) }}
{{- fail "database.type=postgres needs database.postgres.existingSecret (a Secret holding the postgres:// URL)" }}
{{- end }}
{{- if and (eq .Values.database.type "sqlite") (not .Values.persistence.enabled) }}
{{- fail "database.type=sqlite needs persistence.enabled=true: the database would be lost with the pod" }}
{{- end }}
{{- if .Values.oidc.enabled }}
{{- if not (and .Values.oidc.issuer .Values.oidc.clientId) }}
{{- fail "oidc.enabled needs oidc.issuer and oidc.clientId" }}
{{- end }}
{{- if not .Values.config.publicUrl }}
{{- fail "oidc.enabled needs config.publicUrl: the provider sends people back to <publicUrl>/auth/oidc/callback" }}
{{- end }}
{{- else if .Values.oidc.breakGlassUser }}
{{- fail "oidc.breakGlassUser is only for oidc.enabled=true: without single sign-on every local account signs in" }}
{{- end }}
{{- end }}
