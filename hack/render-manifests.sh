#!/usr/bin/env bash
# Renders the release manifests, the image set to IMAGE (by digest:
# repo@sha256:...), into OUT/strata-hub.yaml and OUT/strata-workload.yaml
# with kubectl's built-in kustomize. config/ is left as it is: an overlay
# of each overlay, in a temporary folder beside config/ (kustomize reads
# only relative paths, so Kueue's is named relative to it), sets the image.
#
# Each also holds Kueue, the jobs platform's batch system: its release
# manifests (config/default of its source at the version pinned in
# hack/tools/kueue/go.mod, from the module cache: offline once `make tools`
# has built Kueue) with its upstream image
# registry.k8s.io/kueue/kueue:<version>, the configuration of
# config/kueue/<set>-config.yaml (the hub's names Strata's dispatcher) and
# without the webhooks of the integrations that are off
# (config/kueue/webhooks.yaml).
#
#   hack/render-manifests.sh KUBECTL IMAGE OUT
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $# -ne 3 ]]; then
	echo "usage: $0 KUBECTL IMAGE OUT" >&2
	exit 2
fi
kubectl=$1 image=$2 out=$3
if [[ $image != *@sha256:* ]]; then
	echo "$0: the image must be given by digest (NAME@sha256:...), not $image" >&2
	exit 2
fi

kueue_mod=hack/tools/kueue
kueue_version=$(awk '$1 == "sigs.k8s.io/kueue" { print $2 }' "$kueue_mod/go.mod")
kueue_dir=$(cd "$kueue_mod" && GOPROXY=off go list -m -f '{{.Dir}}' sigs.k8s.io/kueue)
if [[ ! -d $kueue_dir/config/default ]]; then
	echo "$0: Kueue $kueue_version's source is not in the module cache: run \`make tools\`" >&2
	exit 1
fi

tmp=$(mktemp -d "$PWD/.render.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"
for set in hub workload; do
	mkdir "$tmp/$set"
	cp config/kueue/webhooks.yaml "$tmp/$set/"
	{
		echo 'apiVersion: v1'
		echo 'kind: ConfigMap'
		echo 'metadata: {name: kueue-manager-config, namespace: kueue-system}'
		echo 'data:'
		echo '  controller_manager_config.yaml: |'
		sed 's/^/    /' "config/kueue/$set-config.yaml"
	} >"$tmp/$set/kueue-config.yaml"
	cat >"$tmp/$set/kustomization.yaml" <<EOT
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- ../../config/$set
- $(realpath --relative-to="$tmp/$set" "$kueue_dir/config/default")
images:
- name: strata
  newName: ${image%@*}
  digest: ${image#*@}
- name: us-central1-docker.pkg.dev/k8s-staging-images/kueue/kueue
  newName: registry.k8s.io/kueue/kueue
  newTag: $kueue_version
patches:
- path: kueue-config.yaml
- path: webhooks.yaml
EOT
	"$kubectl" kustomize "$tmp/$set" >"$out/strata-$set.yaml"
done
