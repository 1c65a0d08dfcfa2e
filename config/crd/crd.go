// Package crd embeds Strata's generated CustomResourceDefinitions so that
// `strata up` and the tests install exactly what controller-gen wrote.
package crd

import "embed"

// FS holds the CRD manifests of this folder.
//
//go:embed *.yaml
var FS embed.FS
