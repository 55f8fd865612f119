{{/* Name of the release's objects: <release>-<part>, at most 63 characters. */}}
{{- define "cc.name" -}}
{{- printf "%s-%s" .root.Release.Name .name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels of one service. */}}
{{- define "cc.selectorLabels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{/* Labels of every object of one service (or of the release when .name is the chart). */}}
{{- define "cc.labels" -}}
{{ include "cc.selectorLabels" . }}
app.kubernetes.io/part-of: contact-center
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Environment-variable prefix of a service, as the launcher derives it: CC_<NAME>_. */}}
{{- define "cc.envPrefix" -}}
{{- printf "CC_%s_" (.name | upper | replace "-" "_") -}}
{{- end -}}

{{/* Deep-merges dict .src into dict .dst (in place; a false or empty value in .src wins too,
unlike mergeOverwrite). */}}
{{- define "cc.mergeInto" -}}
{{- $dst := .dst -}}
{{- range $k, $v := .src -}}
{{- if and (kindIs "map" $v) (kindIs "map" (index $dst $k)) -}}
{{- $_ := include "cc.mergeInto" (dict "dst" (index $dst $k) "src" $v) -}}
{{- else -}}
{{- $_ := set $dst $k $v -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "cc.databaseSecret" -}}
{{- .Values.database.existingSecret | default (printf "%s-database" .Release.Name) -}}
{{- end -}}

{{- define "cc.authSecret" -}}
{{- .Values.auth.existingSecret | default (printf "%s-auth" .Release.Name) -}}
{{- end -}}

{{- define "cc.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (printf "%s-contact-center" .Release.Name) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{- define "cc.image" -}}
{{- $img := .root.Values.image -}}
{{- $repo := printf "%s/%s" $img.repository .name -}}
{{- if $img.registry }}{{ $repo = printf "%s/%s" $img.registry $repo }}{{ end -}}
{{- printf "%s:%s" $repo ($img.tag | default .root.Chart.AppVersion) -}}
{{- end -}}
