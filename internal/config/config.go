// Package config loads the configuration file of a Strata component
// (config.strata.dev/v1alpha1): strictly decoded, defaulted, validated.
package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/validation/field"

	configv1alpha1 "github.com/strata-dev/strata/api/config/v1alpha1"
)

// Object is a configuration kind.
type Object interface {
	runtime.Object
	Default()
	Validate() field.ErrorList
}

var (
	codecsScheme = func() *runtime.Scheme {
		s := runtime.NewScheme()
		if err := configv1alpha1.AddToScheme(s); err != nil {
			panic(err) // only on a programming error in the API package
		}
		return s
	}()
	// Strict: an unknown or duplicate field is an error, not ignored.
	codecs = serializer.NewCodecFactory(codecsScheme, serializer.EnableStrict)
)

// Load reads the file at path into cfg (a configuration kind), or leaves
// cfg as it is when path is empty, then defaults and validates it. A field
// that is unknown, of the wrong type or invalid is an error that names it.
func Load(path string, cfg Object) error {
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("reading the configuration: %w", err)
		}
		if err := Decode(data, cfg); err != nil {
			return fmt.Errorf("configuration %s: %w", path, err)
		}
	}
	if err := Complete(cfg); err != nil {
		if path == "" {
			return fmt.Errorf("the default configuration: %w", err)
		}
		return fmt.Errorf("configuration %s: %w", path, err)
	}
	return nil
}

// Decode decodes data, YAML or JSON of the kind of cfg, into cfg.
func Decode(data []byte, cfg Object) error {
	want, _, err := codecsScheme.ObjectKinds(cfg)
	if err != nil {
		return err
	}
	var meta metav1.TypeMeta
	if err := yaml.Unmarshal(data, &meta); err != nil {
		return err
	}
	if meta.APIVersion == "" || meta.Kind == "" {
		return fmt.Errorf("apiVersion and kind are required: apiVersion: %s, kind: %s", want[0].GroupVersion(), want[0].Kind)
	}
	obj, gvk, err := codecs.UniversalDeserializer().Decode(data, nil, cfg)
	if err != nil {
		if runtime.IsStrictDecodingError(err) {
			return err // it names the fields
		}
		return nameTheField(data, want[0], err)
	}
	if obj != cfg || *gvk != want[0] {
		return fmt.Errorf("the file holds %s, want %s", gvk, want[0])
	}
	return nil
}

// nameTheField turns a decoding error that does not say where it is (a
// value's own parser, such as a duration's, knows no path) into one that
// does: each leaf of the document is decoded alone until one fails.
func nameTheField(data []byte, gvk schema.GroupVersionKind, err error) error {
	var doc map[string]any
	if yaml.Unmarshal(data, &doc) != nil {
		return err
	}
	var found error
	walkLeaves(nil, doc, func(path []any, leaf any) bool {
		if len(path) == 1 && (path[0] == "apiVersion" || path[0] == "kind") {
			return true
		}
		one := map[string]any{"apiVersion": gvk.GroupVersion().String(), "kind": gvk.Kind}
		setPath(one, path, leaf)
		raw, merr := json.Marshal(one)
		if merr != nil {
			return true
		}
		if _, _, derr := codecs.UniversalDeserializer().Decode(raw, nil, nil); derr != nil {
			found = fmt.Errorf("%s: %w", fieldPath(path), derr)
			return false
		}
		return true
	})
	if found != nil {
		return found
	}
	return err
}

// walkLeaves calls fn with the path (keys and indexes) of each leaf of v
// until fn returns false.
func walkLeaves(path []any, v any, fn func([]any, any) bool) bool {
	switch v := v.(type) {
	case map[string]any:
		for k, child := range v {
			if !walkLeaves(append(slices.Clip(path), k), child, fn) {
				return false
			}
		}
		return true
	case []any:
		for i, child := range v {
			if !walkLeaves(append(slices.Clip(path), i), child, fn) {
				return false
			}
		}
		return true
	}
	return fn(path, v)
}

// setPath puts leaf at path in doc; a list index becomes a list of that
// length with the leaf last (the others empty).
func setPath(doc map[string]any, path []any, leaf any) {
	var build func(rest []any) any
	build = func(rest []any) any {
		if len(rest) == 0 {
			return leaf
		}
		switch k := rest[0].(type) {
		case int:
			list := make([]any, k+1)
			list[k] = build(rest[1:])
			return list
		default:
			return map[string]any{k.(string): build(rest[1:])}
		}
	}
	for k, v := range build(path).(map[string]any) {
		doc[k] = v
	}
}

func fieldPath(path []any) string {
	p := field.NewPath(path[0].(string))
	for _, k := range path[1:] {
		switch k := k.(type) {
		case int:
			p = p.Index(k)
		default:
			p = p.Child(k.(string))
		}
	}
	return p.String()
}

// Complete defaults cfg and validates it.
func Complete(cfg Object) error {
	cfg.Default()
	if errs := cfg.Validate(); len(errs) > 0 {
		return fmt.Errorf("invalid configuration: %w", errors.Join(errorsOf(errs)...))
	}
	return nil
}

func errorsOf(list field.ErrorList) []error {
	errs := make([]error, len(list))
	for i, e := range list {
		errs[i] = e
	}
	return errs
}
