package torchfile

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
)

// Storage is a storage a pickle refers to by persistent id ("storage", torch.<Type>Storage, key, location,
// numel): the tensor data in the archive's record data/<key>.
type Storage struct {
	Key      string
	Type     string // the storage class, e.g. "FloatStorage"
	ItemSize int64
	Location string
	Numel    int64
}

// Tensor is a torch._utils._rebuild_tensor_v2 call of a pickle: a view of a storage.
type Tensor struct {
	Storage *Storage
	Offset  int64
	Size    []int64
	Stride  []int64
}

// Pickle is what Scan found in a pickle: its storages by key, every tensor, and the top-level object.
type Pickle struct {
	Storages map[string]*Storage
	Tensors  []*Tensor
	Top      any // a *Object, *Dict, *Tensor, tuple, ... as the VM represents them
}

// Values of the VM. Strings are string, integers int64, floats float64, booleans bool, None nil.
type (
	// Global is a GLOBAL reference, module and name.
	Global struct{ Module, Name string }
	// Object is what REDUCE or NEWOBJ made of a global other than a tensor rebuild.
	Object struct {
		Class Global
		State any    // set by BUILD
		Items *Dict  // SETITEM(S) on the object (an OrderedDict)
		List  *[]any // APPEND(S) on the object
		Args  []any  // the arguments of the call
	}
	// Dict is a dict: keys and values in order.
	Dict  struct{ Keys, Values []any }
	list  struct{ items []any }
	tuple []any
	mark  struct{}
)

// itemSizes are the storage classes a pickle may name, with their element sizes.
var itemSizes = map[string]int64{
	"FloatStorage": 4, "DoubleStorage": 8, "HalfStorage": 2, "BFloat16Storage": 2, "LongStorage": 8,
	"IntStorage": 4, "ShortStorage": 2, "CharStorage": 1, "ByteStorage": 1, "BoolStorage": 1,
}

// The tensor-rebuilding functions Scan understands.
const (
	rebuildTensorV2 = "torch._utils._rebuild_tensor_v2"
	rebuildParam    = "torch._utils._rebuild_parameter"
)

// maxDims bounds a tensor's rank (libtorch's own limit is 64 too).
const maxDims = 64

// Scan runs a pickle (protocol 2 or 3, the opcodes that torch.save and libtorch's pickler write) in a VM
// that allocates nothing a length field claims beyond the bytes that are there, and checks: every opcode
// is known and complete, the stack and marks are used consistently, every global passes allowed (nil
// allows all; the storage classes and tensor rebuilds are always allowed), every storage id is well
// formed and used with one type and size, and every tensor lies inside its storage with at most as many
// elements as the storage holds (no expanded views, which would allocate more than the file holds).
// Whether each storage's record holds its bytes is Archive.CheckStorages's job.
func Scan(b []byte, allowed func(module, name string) bool) (*Pickle, error) {
	vm := &vm{b: b, allowed: allowed, memo: map[int64]any{},
		p: &Pickle{Storages: map[string]*Storage{}}}
	if err := vm.run(); err != nil {
		return nil, fmt.Errorf("pickle offset %d: %w", vm.op, err)
	}
	return vm.p, nil
}

type vm struct {
	b       []byte
	pos, op int
	stack   []any
	marks   []int
	memo    map[int64]any
	allowed func(module, name string) bool
	p       *Pickle
}

func (v *vm) take(n int64) ([]byte, error) {
	if n < 0 || n > int64(len(v.b)-v.pos) {
		return nil, fmt.Errorf("a length of %d runs past the end of the pickle (%d bytes left)", n, len(v.b)-v.pos)
	}
	s := v.b[v.pos : v.pos+int(n)]
	v.pos += int(n)
	return s, nil
}

func (v *vm) uint(n int) (int64, error) {
	s, err := v.take(int64(n))
	if err != nil {
		return 0, err
	}
	var u uint64
	for i := n - 1; i >= 0; i-- {
		u = u<<8 | uint64(s[i])
	}
	if u > math.MaxInt64 {
		return 0, fmt.Errorf("length %d is out of range", u)
	}
	return int64(u), nil
}

func (v *vm) line() (string, error) {
	i := bytes.IndexByte(v.b[v.pos:], '\n')
	if i < 0 {
		return "", fmt.Errorf("unterminated GLOBAL")
	}
	s := string(v.b[v.pos : v.pos+i])
	v.pos += i + 1
	return s, nil
}

func (v *vm) push(x any) { v.stack = append(v.stack, x) }

func (v *vm) pop() (any, error) {
	if len(v.stack) == 0 || v.top() == (mark{}) {
		return nil, fmt.Errorf("pop from an empty stack")
	}
	x := v.stack[len(v.stack)-1]
	v.stack = v.stack[:len(v.stack)-1]
	return x, nil
}

func (v *vm) top() any { return v.stack[len(v.stack)-1] }

// popMark pops everything down to the last MARK and the mark itself.
func (v *vm) popMark() ([]any, error) {
	if len(v.marks) == 0 {
		return nil, fmt.Errorf("no MARK on the stack")
	}
	m := v.marks[len(v.marks)-1]
	v.marks = v.marks[:len(v.marks)-1]
	items := append([]any(nil), v.stack[m+1:]...)
	v.stack = v.stack[:m]
	return items, nil
}

func (v *vm) run() error {
	for {
		v.op = v.pos
		if v.pos >= len(v.b) {
			return fmt.Errorf("the pickle ends without STOP (truncated)")
		}
		c := v.b[v.pos]
		v.pos++
		if err := v.step(c); err != nil {
			if err == errStop {
				return v.stop()
			}
			return err
		}
	}
}

var errStop = fmt.Errorf("stop")

func (v *vm) stop() error {
	if len(v.stack) != 1 || len(v.marks) != 0 {
		return fmt.Errorf("STOP with %d values and %d marks on the stack, want one value", len(v.stack), len(v.marks))
	}
	if v.pos != len(v.b) {
		return fmt.Errorf("%d bytes after STOP", len(v.b)-v.pos)
	}
	v.p.Top = v.stack[0]
	return nil
}

func (v *vm) step(c byte) error {
	switch c {
	case 0x80: // PROTO
		p, err := v.uint(1)
		if err != nil {
			return err
		}
		if p < 2 || p > 3 {
			return fmt.Errorf("pickle protocol %d: torch.save and libtorch write 2 (re-save with the default pickle_protocol)", p)
		}
	case '.':
		return errStop
	case '(':
		v.marks = append(v.marks, len(v.stack))
		v.push(mark{})
	case '0':
		_, err := v.pop()
		return err
	case '1':
		_, err := v.popMark()
		return err
	case '2':
		if len(v.stack) == 0 || v.top() == (mark{}) {
			return fmt.Errorf("DUP of an empty stack")
		}
		v.push(v.top())
	case '}':
		v.push(&Dict{})
	case ']':
		v.push(&list{})
	case ')':
		v.push(tuple{})
	case 't':
		items, err := v.popMark()
		if err != nil {
			return err
		}
		v.push(tuple(items))
	case 0x85, 0x86, 0x87: // TUPLE1..3
		n := int(c - 0x84)
		t := make(tuple, n)
		for i := n - 1; i >= 0; i-- {
			x, err := v.pop()
			if err != nil {
				return err
			}
			t[i] = x
		}
		v.push(t)
	case 'l':
		items, err := v.popMark()
		if err != nil {
			return err
		}
		v.push(&list{items: items})
	case 'd':
		items, err := v.popMark()
		if err != nil {
			return err
		}
		d := &Dict{}
		if err := d.set(items); err != nil {
			return err
		}
		v.push(d)
	case 'a', 'e': // APPEND, APPENDS
		var items []any
		if c == 'a' {
			x, err := v.pop()
			if err != nil {
				return err
			}
			items = []any{x}
		} else {
			var err error
			if items, err = v.popMark(); err != nil {
				return err
			}
		}
		if len(v.stack) == 0 {
			return fmt.Errorf("APPEND without a list")
		}
		switch l := v.top().(type) {
		case *list:
			l.items = append(l.items, items...)
		case *Object:
			if l.List == nil {
				l.List = new([]any)
			}
			*l.List = append(*l.List, items...)
		default:
			return fmt.Errorf("APPEND to a %T, not a list", v.top())
		}
	case 's', 'u': // SETITEM, SETITEMS
		var items []any
		if c == 's' {
			val, err := v.pop()
			if err != nil {
				return err
			}
			key, err := v.pop()
			if err != nil {
				return err
			}
			items = []any{key, val}
		} else {
			var err error
			if items, err = v.popMark(); err != nil {
				return err
			}
		}
		if len(v.stack) == 0 {
			return fmt.Errorf("SETITEM without a dict")
		}
		var d *Dict
		switch t := v.top().(type) {
		case *Dict:
			d = t
		case *Object:
			if t.Items == nil {
				t.Items = &Dict{}
			}
			d = t.Items
		default:
			return fmt.Errorf("SETITEM on a %T, not a dict", v.top())
		}
		return d.set(items)
	case 'b': // BUILD
		state, err := v.pop()
		if err != nil {
			return err
		}
		if len(v.stack) == 0 {
			return fmt.Errorf("BUILD without an object")
		}
		switch o := v.top().(type) {
		case *Object:
			o.State = state
		case *Tensor: // _rebuild_parameter state, or Python tensor attributes
		default:
			return fmt.Errorf("BUILD on a %T, not an object", v.top())
		}
	case 'R', 0x81: // REDUCE, NEWOBJ
		args, err := v.pop()
		if err != nil {
			return err
		}
		fn, err := v.pop()
		if err != nil {
			return err
		}
		t, ok := args.(tuple)
		g, gok := fn.(Global)
		if !ok || !gok {
			return fmt.Errorf("call of a %T with a %T, want a global and a tuple", fn, args)
		}
		x, err := v.call(g, t)
		if err != nil {
			return err
		}
		v.push(x)
	case 'c': // GLOBAL
		mod, err := v.line()
		if err != nil {
			return err
		}
		name, err := v.line()
		if err != nil {
			return err
		}
		return v.global(mod, name)
	case 'Q': // BINPERSID
		id, err := v.pop()
		if err != nil {
			return err
		}
		s, err := v.storage(id)
		if err != nil {
			return err
		}
		v.push(s)
	case 'J':
		s, err := v.take(4)
		if err != nil {
			return err
		}
		v.push(int64(int32(binary.LittleEndian.Uint32(s))))
	case 'K', 'M':
		n, err := v.uint(int(c-'K')/2 + 1) // K: 1 byte, M: 2 bytes
		if err != nil {
			return err
		}
		v.push(n)
	case 0x8a: // LONG1
		n, err := v.uint(1)
		if err != nil {
			return err
		}
		s, err := v.take(n)
		if err != nil {
			return err
		}
		if n > 8 {
			return fmt.Errorf("a %d-byte integer: too large", n)
		}
		var u uint64
		for i := len(s) - 1; i >= 0; i-- {
			u = u<<8 | uint64(s[i])
		}
		if n > 0 && n < 8 && s[n-1]&0x80 != 0 { // sign-extend
			u |= ^uint64(0) << (8 * uint(n))
		}
		v.push(int64(u))
	case 0x88, 0x89:
		v.push(c == 0x88)
	case 'N':
		v.push(nil)
	case 'G':
		s, err := v.take(8)
		if err != nil {
			return err
		}
		v.push(math.Float64frombits(binary.BigEndian.Uint64(s)))
	case 'X', 'C', 'B', 'U', 'T': // strings and bytes with a 1 or 4-byte length
		n, err := v.uint(lengthSize(c))
		if err != nil {
			return err
		}
		s, err := v.take(n)
		if err != nil {
			return err
		}
		v.push(string(s))
	case 'q', 'r': // BINPUT, LONG_BINPUT
		idx, err := v.uint(lengthSize(c))
		if err != nil {
			return err
		}
		if len(v.stack) == 0 || v.top() == (mark{}) {
			return fmt.Errorf("memoizing an empty stack")
		}
		v.memo[idx] = v.top()
	case 'h', 'j': // BINGET, LONG_BINGET
		idx, err := v.uint(lengthSize(c))
		if err != nil {
			return err
		}
		x, ok := v.memo[idx]
		if !ok {
			return fmt.Errorf("memo entry %d is not set", idx)
		}
		v.push(x)
	default:
		return fmt.Errorf("opcode 0x%02x (%q) is not one torch.save or libtorch writes", c, rune(c))
	}
	return nil
}

// lengthSize is the size of the length or index argument of an opcode: 1 byte for the short forms.
func lengthSize(c byte) int {
	switch c {
	case 'C', 'U', 'q', 'h':
		return 1
	}
	return 4
}

func (d *Dict) set(items []any) error {
	if len(items)%2 != 0 {
		return fmt.Errorf("a dict of %d items: keys and values do not pair up", len(items))
	}
	for i := 0; i < len(items); i += 2 {
		d.Keys = append(d.Keys, items[i])
		d.Values = append(d.Values, items[i+1])
	}
	return nil
}

func (v *vm) global(mod, name string) error {
	full := mod + "." + name
	if mod == "torch" && itemSizes[name] > 0 || full == rebuildTensorV2 || full == rebuildParam ||
		v.allowed == nil || v.allowed(mod, name) {
		v.push(Global{mod, name})
		return nil
	}
	return fmt.Errorf("global %s is not allowed here", full)
}

// storage checks a persistent id and returns its storage, the same one for every use of a key.
func (v *vm) storage(id any) (*Storage, error) {
	t, ok := id.(tuple)
	if !ok || len(t) != 5 || t[0] != "storage" {
		return nil, fmt.Errorf("a persistent id that is not (\"storage\", type, key, location, numel)")
	}
	g, ok1 := t[1].(Global)
	key, ok2 := t[2].(string)
	loc, ok3 := t[3].(string)
	numel, ok4 := t[4].(int64)
	if !ok1 || !ok2 || !ok3 || !ok4 || g.Module != "torch" || itemSizes[g.Name] == 0 {
		return nil, fmt.Errorf("a persistent id that is not (\"storage\", torch.<Type>Storage, key, location, numel)")
	}
	if key == "" || strings.ContainsAny(key, "/\\\x00") || key == "." || key == ".." {
		return nil, fmt.Errorf("storage key %q is not a plain record name", key)
	}
	if numel < 0 || numel > math.MaxInt64/itemSizes[g.Name] {
		return nil, fmt.Errorf("storage %s claims %d elements", key, numel)
	}
	s := &Storage{Key: key, Type: g.Name, ItemSize: itemSizes[g.Name], Location: loc, Numel: numel}
	if old, ok := v.p.Storages[key]; ok {
		if old.Type != s.Type || old.Numel != s.Numel {
			return nil, fmt.Errorf("storage %s is used as %d of %s and as %d of %s", key, old.Numel, old.Type, numel, s.Type)
		}
		return old, nil
	}
	v.p.Storages[key] = s
	return s, nil
}

// call applies a global: a tensor rebuild is checked against its storage; anything else becomes an Object.
func (v *vm) call(g Global, args tuple) (any, error) {
	switch g.Module + "." + g.Name {
	case rebuildTensorV2:
		t, err := rebuild(args)
		if err != nil {
			return nil, err
		}
		v.p.Tensors = append(v.p.Tensors, t)
		return t, nil
	case rebuildParam:
		if len(args) < 1 {
			return nil, fmt.Errorf("_rebuild_parameter without a tensor")
		}
		t, ok := args[0].(*Tensor)
		if !ok {
			return nil, fmt.Errorf("_rebuild_parameter of a %T, not a tensor", args[0])
		}
		return t, nil
	}
	if g.Module == "torch" {
		return nil, fmt.Errorf("call of the storage class torch.%s", g.Name)
	}
	return &Object{Class: g, Args: args}, nil
}

// rebuild checks the arguments of _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata]).
func rebuild(args tuple) (*Tensor, error) {
	if len(args) < 4 {
		return nil, fmt.Errorf("_rebuild_tensor_v2 with %d arguments, want at least 4", len(args))
	}
	s, ok1 := args[0].(*Storage)
	off, ok2 := args[1].(int64)
	size, ok3 := ints(args[2])
	stride, ok4 := ints(args[3])
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return nil, fmt.Errorf("_rebuild_tensor_v2(%T, %T, %T, %T): want a storage, an offset, and size and stride tuples",
			args[0], args[1], args[2], args[3])
	}
	t := &Tensor{Storage: s, Offset: off, Size: size, Stride: stride}
	if err := CheckView(s.Numel, off, size, stride); err != nil {
		return nil, fmt.Errorf("tensor of storage %s: %w", s.Key, err)
	}
	return t, nil
}

func ints(x any) ([]int64, bool) {
	t, ok := x.(tuple)
	if !ok {
		return nil, false
	}
	out := make([]int64, len(t))
	for i, e := range t {
		if out[i], ok = e.(int64); !ok {
			return nil, false
		}
	}
	return out, true
}

// CheckView checks a view (offset, size, stride) of a storage of n elements: every element lies inside
// the storage, and the view has at most n elements, so that making it contiguous allocates no more than
// the storage holds. Sizes, strides and the offset must not be negative.
func CheckView(n, offset int64, size, stride []int64) error {
	bad := func(what string) error {
		return fmt.Errorf("offset %d, size %v, stride %v: %s of %d elements", offset, size, stride, what, n)
	}
	if len(size) != len(stride) || len(size) > maxDims {
		return bad("ranks differ or are too large for a storage")
	}
	if offset < 0 {
		return bad("negative offset into a storage")
	}
	for i, d := range size {
		if d < 0 || stride[i] < 0 {
			return bad("negative size or stride for a storage")
		}
	}
	numel, last := int64(1), offset // last: the index of the last element
	for _, d := range size {
		if d == 0 {
			return nil // no element: no access to the storage
		}
		if numel > n/d {
			return bad("more elements than its storage")
		}
		numel *= d
	}
	for i, d := range size {
		if last >= n || stride[i] != 0 && d-1 > (n-1-last)/stride[i] {
			return bad("reaches past the end of its storage")
		}
		last += (d - 1) * stride[i]
	}
	if last >= n {
		return bad("reaches past the end of its storage")
	}
	return nil
}
