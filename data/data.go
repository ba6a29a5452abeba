package data

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Split names a part of a data set.
type Split string

// The splits. MNIST, Fashion-MNIST and CIFAR-10 have Train and Test; CelebA has all three
// (list_eval_partition.txt: 0 train, 1 valid, 2 test).
const (
	Train Split = "train"
	Valid Split = "valid"
	Test  Split = "test"
)

// ParseSplit turns "train", "valid" (or "val") or "test" into a Split.
func ParseSplit(s string) (Split, error) {
	switch strings.ToLower(s) {
	case "train":
		return Train, nil
	case "valid", "val", "validation":
		return Valid, nil
	case "test":
		return Test, nil
	}
	return "", fmt.Errorf("data: unknown split %q: use train, valid or test", s)
}

// Dataset is a random-access image data set.
type Dataset interface {
	// Len is the number of images.
	Len() int
	// Shape is the (C, H, W) shape of every image Get returns.
	Shape() (c, h, w int)
	// Get decodes image i (0 <= i < Len) into a new C*H*W slice in [-1, 1] and returns its class label
	// (CelebA has none: 0). A non-nil rng applies the split's random augmentation (the training split's
	// horizontal flip for CIFAR-10 and CelebA); nil gives the plain image. Get is safe for concurrent use.
	Get(i int, rng *rand.Rand) ([]float32, int, error)
	// Close releases open files (a CelebA zip); data sets held in memory have nothing to release.
	Close() error
}

// opener builds a data set from its folder.
type opener func(dir string, split Split) (Dataset, error)

var openers = map[string]opener{
	"mnist":   func(dir string, s Split) (Dataset, error) { return openIDX("mnist", dir, s) },
	"fashion": func(dir string, s Split) (Dataset, error) { return openIDX("fashion", dir, s) },
	"cifar10": openCIFAR10,
	"celeba":  openCelebA,
}

// Names lists the data set names Open accepts, sorted.
func Names() []string {
	names := make([]string, 0, len(openers))
	for n := range openers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Open reads data set name ("mnist", "fashion", "cifar10" or "celeba") from dir and returns the given split.
// Errors name the file at fault and say what to do.
func Open(name, dir string, split Split) (Dataset, error) {
	op, ok := openers[strings.ToLower(name)]
	if !ok {
		return nil, fmt.Errorf("data: unknown data set %q: valid names are %s", name, strings.Join(Names(), ", "))
	}
	switch split {
	case Train, Valid, Test:
	default:
		return nil, fmt.Errorf("data: unknown split %q: use train, valid or test", split)
	}
	info, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("data: %s folder %s: %w (create it and put the %s files in it, see data.Sources)", name, dir, err, name)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("data: %s: %s is not a folder: give the folder that holds the %s files", name, dir, name)
	}
	return op(dir, split)
}

// ErrNotFound is wrapped by errors for data files that are missing.
var ErrNotFound = errors.New("data file not found")

// findFile returns the first of names that exists in one of dirs (in order of dirs, then names).
func findFile(dirs, names []string) (string, bool) {
	for _, d := range dirs {
		for _, n := range names {
			p := filepath.Join(d, n)
			if st, err := os.Stat(p); err == nil && !st.IsDir() {
				return p, true
			}
		}
	}
	return "", false
}

// toFloat converts 8-bit pixels to [-1, 1] like the reference: ToTensor (p/255 in float32), then 2*x-1.
func toFloat(dst []float32, src []uint8) {
	for i, p := range src {
		dst[i] = 2*(float32(p)/255) - 1
	}
}
