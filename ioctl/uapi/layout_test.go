package uapi

import (
	"encoding/binary"
	"reflect"
	"structs"
	"testing"
)

// field is one expected field offset of a mirrored struct.
type field struct {
	name   string // Go field name
	offset uintptr
}

// checkLayout asserts that v (a struct value) has the kernel's size and
// field offsets, that encoding/binary sees no hidden compiler padding (it
// counts explicit _ fields, not holes), and that every struct in it starts
// with structs.HostLayout.
func checkLayout(t *testing.T, v any, size uintptr, fields ...field) {
	t.Helper()
	typ := reflect.TypeOf(v)
	if got := typ.Size(); got != size {
		t.Errorf("%s: size %d, kernel has %d", typ, got, size)
	}
	if got := binary.Size(v); got < 0 || uintptr(got) != typ.Size() {
		t.Errorf("%s: binary.Size %d != unsafe.Sizeof %d: implicit padding or a non-fixed-width field", typ, got, typ.Size())
	}
	for _, f := range fields {
		sf, ok := typ.FieldByName(f.name)
		if !ok {
			t.Errorf("%s: no field %s", typ, f.name)
			continue
		}
		if sf.Offset != f.offset {
			t.Errorf("%s.%s: offset %d, kernel has %d", typ, f.name, sf.Offset, f.offset)
		}
	}
	checkHostLayout(t, typ)
}

var hostLayout = reflect.TypeFor[structs.HostLayout]()

func checkHostLayout(t *testing.T, typ reflect.Type) {
	t.Helper()
	switch typ.Kind() {
	case reflect.Array:
		checkHostLayout(t, typ.Elem())
	case reflect.Struct:
		if typ.NumField() == 0 || typ.Field(0).Type != hostLayout {
			t.Errorf("%s: first field must be structs.HostLayout", typ)
		}
		for i := range typ.NumField() {
			f := typ.Field(i)
			switch f.Type.Kind() {
			case reflect.Int, reflect.Uint, reflect.Uintptr, reflect.Bool, reflect.Pointer,
				reflect.Slice, reflect.String, reflect.Map, reflect.Interface, reflect.Func, reflect.Chan:
				t.Errorf("%s.%s: %s is not a fixed-width kernel type", typ, f.Name, f.Type)
			}
			if f.Type != hostLayout {
				checkHostLayout(t, f.Type)
			}
		}
	}
}

// request is one request number pinned to the kernel's value.
type request struct {
	name string
	got  uintptr
	want uintptr
}

func checkRequests(t *testing.T, reqs []request) {
	t.Helper()
	seen := map[string]bool{}
	for _, r := range reqs {
		if seen[r.name] {
			t.Errorf("%s listed twice", r.name)
		}
		seen[r.name] = true
		if r.got != r.want {
			t.Errorf("%s = %#x, kernel has %#x", r.name, r.got, r.want)
		}
	}
}
