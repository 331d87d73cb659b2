{{/* Chart name, truncated to the 63 characters of a label value. */}}
{{- define "converse-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: <release>-<chart>, or <release> when it already contains the chart name. */}}
{{- define "converse-operator.fullname" -}}
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

{{- define "converse-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "converse-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "converse-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "converse-operator.labels" -}}
helm.sh/chart: {{ include "converse-operator.chart" . }}
{{ include "converse-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "converse-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "converse-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* "true" when leader election is on: forced, or `auto` with more than one replica. */}}
{{- define "converse-operator.leaderElection" -}}
{{- $mode := toString .Values.leaderElection.enabled }}
{{- if or (eq $mode "true") (and (eq $mode "auto") (gt (int .Values.replicaCount) 1)) }}true{{ end }}
{{- end }}

{{- define "converse-operator.leaseName" -}}
{{- default (include "converse-operator.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}

{{/*
The namespaces passed as --namespace, comma separated; empty = all namespaces. Namespace scope
always names them (default: the release namespace), since its Roles grant nothing elsewhere.
*/}}
{{- define "converse-operator.watchNamespaces" -}}
{{- $ns := uniq .Values.watchNamespaces }}
{{- if and (eq .Values.rbac.scope "namespace") (empty $ns) }}
{{- $ns = list .Release.Namespace }}
{{- end }}
{{- join "," $ns }}
{{- end }}

{{/*
What the controller does, verb by verb (operator/src): it reads ConverseServers and writes their
status by server-side apply; it server-side-applies its children (apply may create them, hence
create + patch), watches them (list/watch), and deletes the optional ones no longer desired after
a metadata get (Secret, Ingress, PDB, HPA, NetworkPolicy). Secrets are also read and watched
because a ConverseServer references provider keys in them, ConfigMaps because its environment
(env, envFrom) and files directory may come from them. Events go through kube-runtime's
Recorder (events.k8s.io/v1: create, then patch for repeats). No wildcard.
*/}}
{{- define "converse-operator.rules" -}}
- apiGroups: ["converse.dev"]
  resources: ["converseservers"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["converse.dev"]
  resources: ["converseservers/status"]
  verbs: ["get", "patch"]
# Children carry a controller owner reference with blockOwnerDeletion, which clusters running the
# OwnerReferencesPermissionEnforcement admission plugin (e.g. OpenShift) allow only with this.
- apiGroups: ["converse.dev"]
  resources: ["converseservers/finalizers"]
  verbs: ["update"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: [""]
  resources: ["services", "serviceaccounts"]
  verbs: ["get", "list", "watch", "create", "patch"]
# Secrets, read: `get` for the provider keys and auth secrets ConverseServers reference, and the
# Secrets their env/envFrom read (names known only from the CRs), and for <name>-generated;
# `list`/`watch` for the metadata-only watch that brings a CR back when a Secret it references
# changes, so the pods roll (dereference.rs, controller.rs). RBAC can neither limit get to the Secrets a CR names nor list/watch to
# metadata: in its scope the operator may read every Secret (see NOTES.txt and the README).
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch"]
# Secrets, write: only <name>-generated, the JWT signing secret the operator keeps for oauth2 CRs
# without jwtSecretRef (apply.rs: server-side apply, authorised as create when it does not exist
# yet; delete when no longer needed, and only when the CR owns it). Not narrowed by
# resourceNames: RBAC cannot restrict create by name at all, and the names follow each CR's name,
# unknown at install time.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["create", "patch", "delete"]
# ConfigMaps: `get` for those a CR's env/envFrom read (digested into the pod template, so a change
# rolls the pods) and the source of its spec.files (does it exist, with the keys it lists);
# `list`/`watch` for the metadata-only watch that brings the CR back when one changes.
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "watch"]
# PersistentVolumeClaims, `get` only: whether the claim of a CR's spec.files exists, so a missing
# one is a status condition, not a pod stuck in Pending. Not watched: a stalled CR looks again
# every 10 s.
- apiGroups: [""]
  resources: ["persistentvolumeclaims"]
  verbs: ["get"]
- apiGroups: ["networking.k8s.io"]
  resources: ["ingresses", "networkpolicies"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["httproutes"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}
