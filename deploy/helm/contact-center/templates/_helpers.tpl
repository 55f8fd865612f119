{{- define "cc.labels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/part-of: contact-center
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}
