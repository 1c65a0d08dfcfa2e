package component

import "unique"

// Intern returns s's canonical copy: the strings that thousands of cached
// objects repeat (label keys and values, namespaces, condition types and
// reasons, owners' kinds and names, container names) then share one copy
// each instead of one per object, as decoded. The canonical copies live as
// long as something refers to them (package unique), so interning the
// unique strings too (a Node's hostname) holds nothing extra.
func Intern(s string) string {
	if s == "" {
		return ""
	}
	return unique.Make(s).Value()
}

// InternMap returns m with its keys and values interned, in a map of its
// exact size; nil for an empty m.
func InternMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[Intern(k)] = Intern(v)
	}
	return out
}
