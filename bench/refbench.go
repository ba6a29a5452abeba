package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
)

// Reference runs the PyTorch reference's timing script (tools/reference/bench_ref.py) with the sizes
// of the benchmark: same batch, T, latent length, model size, device and threads.
type Reference struct {
	Python string // interpreter with torch (the reference's venv)
	Script string // path of bench_ref.py
	Device string // "cpu" or "cuda:N"
	// Steps and Warmup of the reference (its steps are slow; 0: the benchmark's).
	Steps, Warmup int
	// Env is the reference's environment (nil: this process's); EnvNote says what it is.
	Env     []string
	EnvNote string
}

// RefResult is what the reference measured, with its process's peak resident set.
type RefResult struct {
	Torch         string    `json:"torch"`
	SecPerStep    float64   `json:"sec_per_step"` // median
	ImagesPerSec  float64   `json:"images_per_sec"`
	MinSecPerStep float64   `json:"min_sec_per_step,omitempty"`
	MaxSecPerStep float64   `json:"max_sec_per_step,omitempty"`
	StepSecs      []float64 `json:"step_secs,omitempty"`
	PeakRSS       int64     `json:"peak_rss_bytes"`
	// PeakGPUMemory is torch.cuda.max_memory_allocated over the timed steps (CUDA runs only).
	PeakGPUMemory int64 `json:"peak_gpu_memory_bytes,omitempty"`
	Threads       int   `json:"threads"`
	// SpeedRatio is the images/s of esvae's row Compared (fp32, as the reference) over the reference's.
	SpeedRatio   float64 `json:"speed_ratio"`
	Compared     string  `json:"compared"`
	PeakRSSRatio float64 `json:"peak_rss_ratio,omitempty"` // esvae's peak RSS over the reference's
	Command      string  `json:"command"`
	Environment  string  `json:"environment,omitempty"`
}

// Run runs the reference once and reads its JSON result; c gives the sizes.
func (r *Reference) Run(w io.Writer, c Config) (*RefResult, error) {
	tmp, err := os.MkdirTemp("", "esvae-ref-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "ref.json")
	steps, warm := r.Steps, r.Warmup
	if steps <= 0 {
		steps = c.Steps
	}
	if warm <= 0 {
		warm = c.Warmup
	}
	res := &RefResult{Threads: DescribeMachine(c.Device).Threads}
	dev := r.Device
	if dev == "" {
		dev = "cpu"
	}
	args := []string{r.Script, "--threads", strconv.Itoa(res.Threads), "--batch", strconv.Itoa(c.Batch),
		"--T", strconv.FormatInt(c.Model.T, 10), "--latent", strconv.FormatInt(c.Model.LatentDim, 10),
		"--in-channels", strconv.FormatInt(c.Model.InChannels, 10),
		"--steps", strconv.Itoa(steps), "--warmup", strconv.Itoa(warm), "--device", dev, "--json", out}
	if c.Model.Large {
		args = append(args, "--large")
	}
	cmd := exec.Command(r.Python, args...)
	cmd.Env = r.Env
	res.Command, res.Environment = cmd.String(), r.EnvNote
	cmd.Stdout, cmd.Stderr = w, w
	fmt.Fprintf(w, "  running the reference (%s): %s\n", r.EnvNote, res.Command)
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("the reference (%s) failed: %w", res.Command, err)
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		res.PeakRSS = int64(ru.Maxrss) * 1024 // kB on Linux
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return nil, fmt.Errorf("the reference wrote no result: %w", err)
	}
	if err := json.Unmarshal(b, res); err != nil {
		return nil, fmt.Errorf("the reference's result %s: %w", out, err)
	}
	return res, nil
}

// print writes the comparison of esvae's fp32 result ours, and the process's peak resident set,
// with the reference's. amp, when not nil, is esvae's mixed-precision row: its figure is printed
// beside, labelled as no like-for-like comparison (the reference runs in fp32).
func (r *RefResult) print(w io.Writer, ours Result, amp *Result, peak int64) {
	r.SpeedRatio, r.Compared = ours.ImagesPerSec/r.ImagesPerSec, ours.Name
	fmt.Fprintf(w, "  reference (PyTorch %s, fp32; %s) median %7.3f s/step (min %.3f, max %.3f) %8.1f images/s, peak RSS %s\n",
		r.Torch, r.Environment, r.SecPerStep, r.MinSecPerStep, r.MaxSecPerStep, r.ImagesPerSec, mib(r.PeakRSS))
	fmt.Fprintf(w, "  %s / reference, both fp32: %.2fx the training throughput", ours.Name, r.SpeedRatio)
	if peak > 0 && r.PeakRSS > 0 {
		r.PeakRSSRatio = float64(peak) / float64(r.PeakRSS)
		fmt.Fprintf(w, ", %.2f of its peak RSS (%s against %s)", r.PeakRSSRatio, mib(peak), mib(r.PeakRSS))
	}
	fmt.Fprintln(w)
	if amp != nil {
		fmt.Fprintf(w, "  %s: %.1f images/s, %.2fx the reference's fp32 throughput: not comparable (the reference has no mixed precision); the like-for-like ratio is the line above\n",
			amp.Name, amp.ImagesPerSec, amp.ImagesPerSec/r.ImagesPerSec)
	}
}
