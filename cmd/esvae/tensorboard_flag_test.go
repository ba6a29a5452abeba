package main

import (
	"testing"
)

// TensorBoard logging is on by default; tensorboard: false in a file, ESVAE_TENSORBOARD=false or
// --tensorboard=false turn it off.
func TestTensorBoardKey(t *testing.T) {
	flags := newTrainCommand(&app{}).Flags()
	cfg, err := loadConfig(flags, "")
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.TensorBoard {
		t.Fatal("tensorboard is off by default")
	}
	cfg, err = loadConfig(flags, writeFile(t, "c.yaml", "tensorboard: false\n"))
	if err != nil || cfg.TensorBoard {
		t.Fatalf("tensorboard: false in a file: %v, %v", cfg.TensorBoard, err)
	}
	t.Setenv("ESVAE_TENSORBOARD", "false")
	if cfg, err = loadConfig(flags, ""); err != nil || cfg.TensorBoard {
		t.Fatalf("ESVAE_TENSORBOARD=false: %v, %v", cfg.TensorBoard, err)
	}
	t.Setenv("ESVAE_TENSORBOARD", "true")
	if err := flags.Set("tensorboard", "false"); err != nil {
		t.Fatal(err)
	}
	if cfg, err = loadConfig(flags, ""); err != nil || cfg.TensorBoard {
		t.Fatalf("--tensorboard=false: %v, %v", cfg.TensorBoard, err)
	}
}
