{{/*
The pod template shared by the gateway Deployment and the optional processor Deployment.
Call with (dict "root" $ "component" "gateway"|"processor").
*/}}
{{- define "oc-event-gateway.podTemplate" -}}
{{- $root := .root -}}
{{- $component := .component -}}
{{- $values := $root.Values -}}
metadata:
  annotations:
    checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
    {{- with $values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  labels:
    {{- include "oc-event-gateway.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ $component }}
    {{- with $values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  {{- with $values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  serviceAccountName: {{ include "oc-event-gateway.serviceAccountName" $root }}
  automountServiceAccountToken: {{ $values.serviceAccount.automount }}
  securityContext:
    {{- toYaml $values.podSecurityContext | nindent 4 }}
  terminationGracePeriodSeconds: {{ include "oc-event-gateway.terminationGracePeriodSeconds" $root }}
  {{- with $values.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  containers:
    - name: {{ $component }}
      image: {{ include "oc-event-gateway.image" $root | quote }}
      imagePullPolicy: {{ $values.image.pullPolicy }}
      args: ["serve"]
      securityContext:
        {{- toYaml $values.securityContext | nindent 8 }}
      ports:
        {{- if eq $component "gateway" }}
        - name: http
          containerPort: {{ $values.containerPorts.http }}
          protocol: TCP
        {{- end }}
        - name: metrics
          containerPort: {{ $values.containerPorts.metrics }}
          protocol: TCP
      envFrom:
        - configMapRef:
            name: {{ include "oc-event-gateway.fullname" $root }}
        {{- with $values.existingSecret }}
        - secretRef:
            name: {{ . }}
        {{- end }}
      env:
        - name: GATEWAY_INSTANCE_ID
          valueFrom:
            fieldRef:
              fieldPath: metadata.name
        {{- if eq $component "processor" }}
        - name: GATEWAY_INGEST_ENABLED
          value: "false"
        {{- else if $values.processor.separate }}
        - name: GATEWAY_PROCESSOR_ENABLED
          value: "false"
        {{- end }}
        {{- if and (eq $component "gateway") (gt (int $values.ingest.workers) 1) }}
        - name: GATEWAY_INGEST_WORKERS
          value: {{ $values.ingest.workers | quote }}
        {{- end }}
        {{- if and (eq $component "gateway") $values.ingest.ownProcess }}
        - name: GATEWAY_INGEST_OWN_PROCESS
          value: "true"
        {{- end }}
        {{- with $values.kafka.sasl.passwordSecret }}
        {{- if and .name (hasPrefix "SASL_" $values.kafka.securityProtocol) }}
        - name: GATEWAY_KAFKA_SASL_PASSWORD
          valueFrom:
            secretKeyRef:
              name: {{ .name }}
              key: {{ .key }}
        {{- end }}
        {{- end }}
        {{- with $values.oc.refreshTokenSecret }}
        {{- if .name }}
        - name: GATEWAY_OC_REFRESH_TOKEN
          valueFrom:
            secretKeyRef:
              name: {{ .name }}
              key: {{ .key }}
        {{- end }}
        {{- end }}
        {{- if $values.console.enabled }}
        - name: GATEWAY_CONSOLE_TOKEN_FILE
          value: {{ include "oc-event-gateway.consoleTokenFile" $root | quote }}
        {{- end }}
        {{- if $values.oc.tokenStore.existingClaim }}
        - name: GATEWAY_OC_TOKEN_STORE
          value: {{ include "oc-event-gateway.tokenStorePath" $root | quote }}
        {{- end }}
        {{- with $values.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with $values.startupProbe }}
      startupProbe:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $values.livenessProbe }}
      livenessProbe:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $values.readinessProbe }}
      readinessProbe:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      lifecycle:
        preStop:
          exec:
            # Endpoints drop the pod while it sleeps; SIGTERM then finds no new traffic.
            command: ["/bin/sleep", {{ $values.preStopSleepSeconds | quote }}]
      resources:
        {{- if eq $component "processor" }}
        {{- toYaml (default $values.resources $values.processor.resources) | nindent 8 }}
        {{- else }}
        {{- toYaml $values.resources | nindent 8 }}
        {{- end }}
      volumeMounts:
        - name: data
          mountPath: /data
        - name: tmp
          mountPath: /tmp
        {{- if $values.kafka.tls.existingSecret }}
        - name: kafka-tls
          mountPath: /etc/gateway/kafka-tls
          readOnly: true
        {{- end }}
        {{- if $values.console.enabled }}
        - name: console-token
          mountPath: {{ dir (include "oc-event-gateway.consoleTokenFile" $root) }}
          readOnly: true
        {{- end }}
        {{- if $values.oc.tokenStore.existingClaim }}
        - name: oc-token-store
          mountPath: {{ include "oc-event-gateway.tokenStoreMount" $root }}
        {{- end }}
        {{- with $values.extraVolumeMounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
  volumes:
    {{- if and (eq $component "gateway") (eq (include "oc-event-gateway.dataVolume" $root) "claim") }}
    - name: data
      persistentVolumeClaim:
        claimName: {{ include "oc-event-gateway.claimName" $root }}
    {{- else }}
    - name: data
      emptyDir:
        sizeLimit: {{ $values.persistence.emptyDirSizeLimit }}
    {{- end }}
    - name: tmp
      emptyDir:
        sizeLimit: 64Mi
    {{- with $values.kafka.tls }}
    {{- if .existingSecret }}
    - name: kafka-tls
      secret:
        secretName: {{ .existingSecret }}
        defaultMode: 0440
        items:
          {{- range list .caKey .certKey .keyKey | compact }}
          - key: {{ . }}
            path: {{ . }}
          {{- end }}
    {{- end }}
    {{- end }}
    {{- if $values.console.enabled }}
    # The console token as a file: the kubelet updates it when the Secret changes, and the
    # gateway reads it again (no restart).
    - name: console-token
      secret:
        secretName: {{ include "oc-event-gateway.consoleSecret" $root }}
        defaultMode: 0440
        items:
          - key: {{ $values.console.key }}
            path: {{ base (include "oc-event-gateway.consoleTokenFile" $root) }}
    {{- end }}
    {{- with $values.oc.tokenStore.existingClaim }}
    # One OC token store for every pod of the release (ReadWriteMany): a refresh token OC
    # rotates reaches all replicas (helm/README.md, "Connecting to OC").
    - name: oc-token-store
      persistentVolumeClaim:
        claimName: {{ . }}
    {{- end }}
    {{- with $values.extraVolumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with $values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $values.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
