package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/esvae-go/esvae/data"
	"github.com/esvae-go/esvae/eval"
	"github.com/esvae-go/esvae/internal/native"
	"github.com/esvae-go/esvae/nn"
	"github.com/esvae-go/esvae/vis"
)

// imagesEvalFlags are the flags of esvae eval that score a folder of images (--images).
type imagesEvalFlags struct {
	images, ref, fidStats string
}

// evalImages scores the folder f.images against --ref DIR, statistics files or the data set's
// test split (eval.ScoreFolder), prints the scores and, with --out, writes scores.json and scores.md.
func evalImages(ctx context.Context, a *app, f imagesEvalFlags, metrics, name, dir string, limit int,
	fadModel, fadStats, fadBN, inception, inceptionLogits string, isSplits int, out string) error {
	if err := nn.LockThread(); err != nil {
		return err
	}
	dev, err := nn.ParseDevice(a.cfg.Device)
	if err != nil {
		return err
	}
	if err := native.ManualSeed(0); err != nil {
		return err
	}
	want := map[string]bool{}
	for _, m := range strings.Split(metrics, ",") {
		m = strings.TrimSpace(strings.ToLower(m))
		switch m {
		case "all":
			want["fad"], want["fid"], want["is"] = true, true, true
		case "fad", "fid", "is":
			want[m] = true
		case "mse", "robustness", "robust", "energy", "probe":
			return fmt.Errorf("--metrics %s needs a model (--checkpoint); a folder of images gets fad, fid and is", m)
		default:
			return fmt.Errorf("--metrics: %q is not fad, fid or is (or all)", m)
		}
	}
	if fadBN != "batch" && fadBN != "eval" {
		return fmt.Errorf("--fad-bn %q: use batch (the authors' protocol) or eval", fadBN)
	}
	if name == "" {
		name = "mnist"
	}
	o := eval.FolderOptions{
		Images: f.images, RefDir: f.ref, Data: strings.ToLower(name), DataDir: dir, Split: data.Test, RefLimit: limit,
		FADStats: fadStats, FADBatchStats: fadBN == "batch", Inception: inception, FIDStats: f.fidStats,
		NoFID: !want["fid"], ISSplits: isSplits, Device: dev,
		Log:      func(format string, args ...any) { a.log.Info().Msg(fmt.Sprintf(format, args...)) },
		Progress: a.stderr,
	}
	if strings.EqualFold(name, "celeba") {
		o.Split = data.Valid // as esvae eval's FID of a checkpoint
	}
	if want["fad"] {
		o.FADModel = fadModel
	}
	if want["is"] {
		o.InceptionLogits = inceptionLogits
	}
	rep, err := eval.ScoreFolder(ctx, o)
	if err != nil {
		return err
	}
	if out != "" {
		if err := os.MkdirAll(out, 0o755); err != nil {
			return fmt.Errorf("creating --out: %w", err)
		}
		if err := vis.WriteFileAtomic(filepath.Join(out, "scores.json"), rep.WriteJSON); err != nil {
			return err
		}
		if err := vis.WriteFileAtomic(filepath.Join(out, "scores.md"), rep.WriteText); err != nil {
			return err
		}
	}
	return rep.WriteText(a.stdout)
}
