package torchfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
)

// The records that libtorch 2.1's torch::jit::Module export writes for a module of tensor attributes and
// no methods, besides data.pkl, code/__torch__.py and data/<n>.
var (
	constantsPkl = []byte("\x80\x02).")
	// debugPkl is code/__torch__.py.debug_pkl: the source ranges of a class without methods.
	debugPkl = []byte("\x80\x02X\x18\x00\x00\x00FORMAT_WITH_STRING_TABLEq\x00X\x00\x00\x00\x00q\x01\x85q\x02K\x00" +
		"ctorch.jit._pickle\nbuild_intlist\nq\x03(](etRK\x00K\x00\x87q\x04K\x00K\x00\x87K\x00\x87\x85q\x05\x87.")
	versionRE    = regexp.MustCompile(`^[0-9]{1,2}\n?$`)
	serialIDRE   = regexp.MustCompile(`^[0-9]{1,64}$`)
	storageKeyRE = regexp.MustCompile(`^data/[0-9]{1,9}$`)
	// AttrNameRE is the form of an attribute name that CheckModule accepts (and native.SaveArchive writes).
	AttrNameRE = regexp.MustCompile(`^[A-Za-z0-9_.]{1,200}$`)
	identRE    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// maxModuleRecord bounds data.pkl and the code record: about 100 bytes per tensor.
const maxModuleRecord = 16 << 20

// CheckModule checks the zip file at path against what libtorch 2.1's torch::serialize::OutputArchive
// writes for named tensors (internal/native's checkpoints): a TorchScript module of class
// __torch__.Module whose attributes are the tensors. libtorch's reader (torch::jit::load) trusts its
// input and cannot be recovered when it crashes, so everything it reads must be what the writer makes:
// the file starts with a zip record (not a flatbuffer), every record's CRC-32 matches (errors.Is(err,
// zip.ErrChecksum) otherwise), the records are exactly the writer's, the constant ones (constants.pkl,
// the debug record, version, byte order) are the writer's bytes, data.pkl is a __torch__.Module whose
// state maps names to CPU tensors that lie inside their storages, each storage's record holds it, and the
// code record is exactly the class the writer prints for those names (the TorchScript compiler sees
// nothing else). Errors do not name the file; callers add it.
func CheckModule(path string) error {
	if err := checkEnds(path); err != nil {
		return err
	}
	a, err := Open(path)
	if err != nil {
		return err
	}
	defer a.Close()
	if err := a.VerifyCRCs(); err != nil {
		return err
	}
	for name := range a.Records {
		switch {
		case name == "data.pkl", name == "code/__torch__.py", name == "code/__torch__.py.debug_pkl",
			name == "constants.pkl", name == "version", name == ".data/version", name == "byteorder",
			name == ".data/serialization_id", storageKeyRE.MatchString(name):
		default:
			return fmt.Errorf("unexpected record %s/%s: not written by libtorch's OutputArchive", a.Prefix, name)
		}
	}
	if err := a.checkFixed(); err != nil {
		return err
	}
	pkl, err := a.Read("data.pkl", maxModuleRecord)
	if err != nil {
		return err
	}
	p, err := Scan(pkl, func(module, name string) bool {
		return module == "__torch__" && name == "Module" || module == "collections" && name == "OrderedDict"
	})
	if err != nil {
		return fmt.Errorf("data.pkl: %w", err)
	}
	if err := a.CheckStorages(p, "data/"); err != nil {
		return err
	}
	names, err := moduleAttrs(p)
	if err != nil {
		return fmt.Errorf("data.pkl: %w", err)
	}
	code, err := a.Read("code/__torch__.py", maxModuleRecord)
	if err != nil {
		return err
	}
	if want := moduleCode(names); !bytes.Equal(code, want) {
		return errors.New("code/__torch__.py is not the class libtorch's OutputArchive writes for the tensors of data.pkl")
	}
	return nil
}

// checkEnds checks that the file starts with a zip record (libtorch takes a file whose bytes 4 to 8 are
// "PTMF" for a flatbuffer module, whatever else it holds) and ends with the zip directory's end record,
// without comment: Go's and libtorch's zip readers both search it from the end, and could otherwise find
// different ones.
func checkEnds(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	head, tail := make([]byte, 8), make([]byte, 22)
	if _, err := io.ReadFull(f, head); err != nil || string(head[:4]) != "PK\x03\x04" || string(head[4:]) == "PTMF" {
		return errors.New("the file does not start with a zip record")
	}
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if _, err := f.ReadAt(tail, st.Size()-22); err != nil || string(tail[:4]) != "PK\x05\x06" || tail[20] != 0 || tail[21] != 0 {
		return errors.New("the file does not end with a zip directory (truncated, or data after the archive)")
	}
	return nil
}

// checkFixed checks the records whose content does not depend on the tensors.
func (a *Archive) checkFixed() error {
	for _, r := range []struct {
		name     string
		required bool
		ok       func([]byte) bool
	}{
		{"constants.pkl", true, func(b []byte) bool { return bytes.Equal(b, constantsPkl) }},
		{"code/__torch__.py.debug_pkl", false, func(b []byte) bool { return bytes.Equal(b, debugPkl) }},
		{"version", true, versionRE.Match},
		{".data/version", false, versionRE.Match},
		{"byteorder", false, func(b []byte) bool { return string(b) == "little" }},
		{".data/serialization_id", false, serialIDRE.Match},
	} {
		if _, ok := a.Records[r.name]; !ok {
			if r.required {
				return fmt.Errorf("no record %s/%s: not a complete libtorch archive", a.Prefix, r.name)
			}
			continue
		}
		b, err := a.Read(r.name, 1024)
		if err != nil {
			return err
		}
		if !r.ok(b) {
			return fmt.Errorf("record %s/%s is not what libtorch's OutputArchive writes", a.Prefix, r.name)
		}
	}
	return nil
}

// moduleAttrs returns the attribute names of a data.pkl that is a __torch__.Module of CPU tensors.
func moduleAttrs(p *Pickle) ([]string, error) {
	o, ok := p.Top.(*Object)
	if !ok || o.Class != (Global{"__torch__", "Module"}) || len(o.Args) != 0 || o.Items != nil || o.List != nil {
		return nil, errors.New("the top object is not a __torch__.Module")
	}
	d, ok := o.State.(*Dict)
	if !ok || len(d.Keys) == 0 {
		return nil, errors.New("the module has no attributes")
	}
	names := make([]string, len(d.Keys))
	seen := map[string]bool{}
	for i, k := range d.Keys {
		name, ok := k.(string)
		if !ok || !AttrNameRE.MatchString(name) || seen[name] {
			return nil, fmt.Errorf("attribute %d has a name that is not a string of letters, digits, '_' and '.', or a repeated one", i)
		}
		seen[name] = true
		t, ok := d.Values[i].(*Tensor)
		if !ok {
			return nil, fmt.Errorf("attribute %s is a %T, not a tensor", name, d.Values[i])
		}
		if t.Storage.Location != "cpu" {
			return nil, fmt.Errorf("attribute %s is stored for device %q, not the CPU", name, t.Storage.Location)
		}
		names[i] = name
	}
	return names, nil
}

// moduleCode is the class libtorch 2.1's Python printer writes for a module with the tensor parameters names.
func moduleCode(names []string) []byte {
	var b strings.Builder
	b.WriteString("class Module(Module):\n  __parameters__ = [")
	for _, n := range names {
		b.WriteString(`"` + n + `", `)
	}
	b.WriteString("]\n  __buffers__ = []\n")
	annotations := false
	for _, n := range names {
		if identRE.MatchString(n) {
			b.WriteString("  " + n + " : Tensor\n")
			continue
		}
		if !annotations {
			b.WriteString("  __annotations__ = []\n")
			annotations = true
		}
		b.WriteString(`  __annotations__["` + n + `"] = Tensor` + "\n")
	}
	return []byte(b.String())
}
