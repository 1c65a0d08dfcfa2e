#!/usr/bin/env bash
# Renders the release manifests, the image set to IMAGE (by digest:
# repo@sha256:...), into OUT/strata-hub.yaml and OUT/strata-workload.yaml
# with kubectl's built-in kustomize. config/ is left as it is: an overlay
# of each overlay, in a temporary folder beside config/ (kustomize reads
# only relative paths), sets the image.
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

tmp=$(mktemp -d "$PWD/.render.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"
for set in hub workload; do
	mkdir "$tmp/$set"
	cat >"$tmp/$set/kustomization.yaml" <<EOT
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- ../../config/$set
images:
- name: strata
  newName: ${image%@*}
  digest: ${image#*@}
EOT
	"$kubectl" kustomize "$tmp/$set" >"$out/strata-$set.yaml"
done
