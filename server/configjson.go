package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
)

// decodeSection decodes b, the config file's section name, into v,
// refusing unknown fields as Config does. Its errors start with the name:
// configProblem and configKey read it to give the key's full path.
func decodeSection(name string, b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// configProblem turns an encoding/json error about a config file into what
// a person edits: the setting's key as written in the file (never a Go
// type's name) and, for syntax errors, the line and column.
func configProblem(err error, file []byte) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		line, col := lineColumn(file, syntax.Offset)
		return fmt.Errorf("line %d, column %d: %s", line, col, syntax.Error())
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return errors.New("the file ends before its JSON object does")
	case errors.As(err, &typ) && typ.Field == "":
		return fmt.Errorf("the file holds a JSON %s; it must hold one JSON object of settings", typ.Value)
	case errors.As(err, &typ) && strings.HasPrefix(err.Error(), "tokens: "):
		// The tokens section's own decoder counted offsets from its start.
		return fmt.Errorf("%s is a JSON %s; it must be %s", configKey(err, typ.Field), typ.Value, jsonKind(typ.Type))
	case errors.As(err, &typ):
		line, col := lineColumn(file, typ.Offset)
		return fmt.Errorf("line %d, column %d: %s is a JSON %s; it must be %s", line, col, configKey(err, typ.Field), typ.Value, jsonKind(typ.Type))
	}
	if msg := err.Error(); strings.Contains(msg, "json: unknown field ") {
		return errors.New(strings.Replace(msg, "json: unknown field ", "unknown field ", 1) + " (see docs/OPERATIONS.md for the settings)")
	}
	return err
}

// configKey writes an UnmarshalTypeError's field path with the file's keys:
// without the shadow structs' names, and under "tokens." when the tokens
// section's own decoder reported it (and "presence." for the presence
// section's).
func configKey(err error, field string) string {
	parts := strings.Split(field, ".")
	parts = slices.DeleteFunc(parts, func(p string) bool {
		return p == "configJSON" || p == "configPlain" || p == "tokensJSON" || p == "tokensPlain" ||
			p == "presenceLimitsJSON" || p == "presenceLimitsPlain"
	})
	key := strings.Join(parts, ".")
	if strings.HasPrefix(err.Error(), "tokens: ") && !strings.HasPrefix(key, "tokens.") {
		key = "tokens." + key
	}
	if strings.HasPrefix(err.Error(), "presence: ") && !strings.HasPrefix(key, "presence.") {
		key = "presence." + key
	}
	return key
}

// checkKeyCase refuses a key that matches a setting only when case is
// ignored: encoding/json would take "apikeys" for "apiKeys", while a key
// that matches nothing is refused, so a misspelling's fate would depend on
// which letters were wrong. t is the type the JSON value raw decodes into;
// path is where raw is, for the message. Values that are not what t wants
// are left for the decoder to report.
func checkKeyCase(raw []byte, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == reflect.TypeFor[TokensConfig]() {
		t = reflect.TypeFor[tokensJSON]() // what its UnmarshalJSON decodes
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		var items []json.RawMessage
		if json.Unmarshal(raw, &items) != nil {
			return nil
		}
		for i, it := range items {
			if err := checkKeyCase(it, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case reflect.Struct:
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) != nil {
			return nil
		}
		fields := jsonFields(t)
		for _, k := range slices.Sorted(func(yield func(string) bool) {
			for k := range obj {
				if !yield(k) {
					return
				}
			}
		}) {
			where := k
			if path != "" {
				where = path + "." + k
			}
			ft, ok := fields[k]
			if !ok {
				for name := range fields {
					if strings.EqualFold(name, k) {
						return fmt.Errorf("unknown key %q: did you mean %q? (keys are case-sensitive)", where, name)
					}
				}
				continue // the decoder refuses it as unknown
			}
			if err := checkKeyCase(obj[k], ft, where); err != nil {
				return err
			}
		}
	}
	return nil
}

// jsonFields maps the JSON keys of struct type t to their field types, as
// encoding/json sees them: fields of embedded structs included, the outer
// ones winning.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	var embedded []reflect.Type
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" {
			et := f.Type
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				embedded = append(embedded, et)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	for _, et := range embedded {
		for name, ft := range jsonFields(et) {
			if _, ok := out[name]; !ok {
				out[name] = ft
			}
		}
	}
	return out
}
