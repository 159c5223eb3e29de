package config

import (
	"fmt"
	"math"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// keyError is a value that does not parse or validate, named by its full key (chains[0].fees.max_fee_per_gas)
// or, for an environment override, by its variable.
type keyError struct {
	key string
	err error
}

func (e *keyError) Error() string {
	if e.key == "" {
		return "the file " + e.err.Error() // the document itself, e.g. a list where a mapping belongs
	}
	return e.key + ": " + e.err.Error()
}
func (e *keyError) Unwrap() error { return e.err }

// decode sets v from n the way yaml.v3's Decode does (tags name the keys, unknown keys are ignored, a
// key set twice is an error, null leaves the zero value, merge keys and aliases are followed), but walks the tree itself so that
// it knows each value's key: yaml.v3 hands an UnmarshalYAML only the node, and stops at the first
// error it returns. It returns every value that does not parse, each named by its key.
func decode(n *yaml.Node, v reflect.Value, key string) []*keyError {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return nil
		}
		return decode(n.Content[0], v, key)
	}
	if n.ShortTag() == "!!null" {
		v.Set(reflect.Zero(v.Type()))
		return nil
	}
	if u, ok := v.Addr().Interface().(yaml.Unmarshaler); ok {
		if err := u.UnmarshalYAML(n); err != nil {
			return []*keyError{{key, err}}
		}
		return nil
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		return decode(n, v.Elem(), key)
	case reflect.Struct:
		return decodeStruct(n, v, key)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return []*keyError{{key, fmt.Errorf("is not a list")}}
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		var errs []*keyError
		for i, item := range n.Content {
			errs = append(errs, decode(item, s.Index(i), fmt.Sprintf("%s[%d]", key, i))...)
		}
		v.Set(s)
		return errs
	case reflect.Map:
		if n.Kind != yaml.MappingNode || v.Type().Key().Kind() != reflect.String {
			return []*keyError{{key, fmt.Errorf("is not a mapping")}}
		}
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
		var errs []*keyError
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			if line, dup := seen[k]; dup {
				errs = append(errs, &keyError{join(key, k), fmt.Errorf("set twice, on lines %d and %d", line, n.Content[i].Line)})
				continue
			}
			seen[k] = n.Content[i].Line
			elem := reflect.New(v.Type().Elem()).Elem()
			if old := v.MapIndex(reflect.ValueOf(k).Convert(v.Type().Key())); old.IsValid() {
				elem.Set(old)
			}
			errs = append(errs, decode(n.Content[i+1], elem, join(key, k))...)
			v.SetMapIndex(reflect.ValueOf(k).Convert(v.Type().Key()), elem)
		}
		return errs
	}
	if n.Kind != yaml.ScalarNode {
		return []*keyError{{key, fmt.Errorf("is not a single value")}}
	}
	if err := n.Decode(v.Addr().Interface()); err != nil {
		return []*keyError{{key, fmt.Errorf("%q is not %s", n.Value, describe(v.Type()))}}
	}
	return nil
}

func decodeStruct(n *yaml.Node, v reflect.Value, key string) []*keyError {
	if n.Kind != yaml.MappingNode {
		return []*keyError{{key, fmt.Errorf("is not a mapping")}}
	}
	fields := map[string][]int{}
	structFields(v.Type(), nil, fields)
	var errs []*keyError
	// Merged mappings first, so that the mapping's own keys win, as in yaml.v3.
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.ShortTag() == "!!merge" {
			m := n.Content[i+1]
			if m.Kind == yaml.AliasNode {
				m = m.Alias
			}
			merged := []*yaml.Node{m}
			if m.Kind == yaml.SequenceNode {
				merged = m.Content
			}
			for _, m := range merged {
				errs = append(errs, decodeStruct(deref(m), v, key)...)
			}
		}
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if k.ShortTag() == "!!merge" {
			continue
		}
		if line, dup := seen[k.Value]; dup {
			errs = append(errs, &keyError{join(key, k.Value), fmt.Errorf("set twice, on lines %d and %d", line, k.Line)})
			continue
		}
		seen[k.Value] = k.Line
		if f, ok := fields[k.Value]; ok {
			errs = append(errs, decode(n.Content[i+1], v.FieldByIndex(f), join(key, k.Value))...)
		}
	}
	return errs
}

func deref(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.AliasNode {
		return n.Alias
	}
	return n
}

func join(key, name string) string {
	if key == "" {
		return name
	}
	return key + "." + name
}

// describe names what a plain value of type t must be, for an error message.
func describe(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return fmt.Sprintf("a whole number from 0 to %d", uint64(math.MaxUint64)>>(64-t.Bits()))
	case reflect.Bool:
		return "true or false"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "a " + t.String()
}

// structFields maps each YAML key of t to its field's index path; the keys of a `yaml:",inline"` struct
// field are the parent's own, as in yaml.v3.
func structFields(t reflect.Type, at []int, fields map[string][]int) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		idx := append(append([]int(nil), at...), i)
		if opts == "inline" && f.Type.Kind() == reflect.Struct {
			structFields(f.Type, idx, fields)
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = idx
	}
}
