package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/esvae-go/esvae/internal/native"
	"github.com/esvae-go/esvae/serve"
)

func main() {
	ckpt := flag.String("checkpoint", "", "checkpoint to serve (required)")
	clients := flag.Int("clients", 4, "concurrent clients")
	duration := flag.Duration("duration", 20*time.Second, "how long the clients send")
	maxReq := flag.Int("n", 0, "stop after this many requests in all (0: only the duration)")
	queue := flag.Int("queue", serve.DefaultQueue, "the server's queue (--queue of esvae serve)")
	device := flag.String("device", "cpu", "device of the model")
	flag.Parse()
	if err := run(*ckpt, *clients, *duration, *maxReq, *queue, *device); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

func run(ckpt string, clients int, duration time.Duration, maxReq, queue int, device string) error {
	if ckpt == "" || clients < 1 || duration <= 0 {
		return fmt.Errorf("give --checkpoint, --clients >= 1 and --duration > 0")
	}
	native.TuneMalloc()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := serve.NewServer(ctx, serve.Options{Checkpoint: ckpt, Device: device, Queue: queue}, zerolog.New(os.Stderr).Level(zerolog.WarnLevel))
	if err != nil {
		return err
	}
	defer s.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()
	url := "http://" + ln.Addr().String() + "/api/reconstruct"
	body, err := requestBody()
	if err != nil {
		return err
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	// One request first: the first forward pass allocates what later ones reuse.
	if st, _, err := send(client, url, body); err != nil || st != http.StatusOK {
		return fmt.Errorf("warm-up request: status %d, %v", st, err)
	}
	runtime.GC()
	rssStart := rssMiB()

	tally := &tally{status: map[int]int{}}
	deadline := time.Now().Add(duration)
	start := time.Now()
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() { tally.client(client, url, body, deadline, maxReq) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	runtime.GC()
	rssEnd := rssMiB()
	cancel()
	<-served

	latencies, status, failures := tally.latencies, tally.status, tally.failures
	slices.Sort(latencies)
	ok := len(latencies)
	fmt.Printf("checkpoint %s, device %s, %d clients, queue %d, %s, CPU %s (%d logical cores)\n",
		ckpt, device, clients, queue, elapsed.Round(10*time.Millisecond), cpuName(), runtime.NumCPU())
	fmt.Printf("requests: %d answered 200, %d answered 503 (queue full), %d other statuses, %d transport errors\n",
		ok, status[http.StatusServiceUnavailable], total(status)-ok-status[http.StatusServiceUnavailable], failures)
	fmt.Printf("throughput: %.1f reconstructions/s\n", float64(ok)/elapsed.Seconds())
	if ok > 0 {
		fmt.Printf("latency of 200s: p50 %s, p95 %s, p99 %s, max %s\n", pct(latencies, 0.50), pct(latencies, 0.95), pct(latencies, 0.99), latencies[ok-1].Round(100*time.Microsecond))
	}
	fmt.Printf("process RSS: %.1f MiB after warm-up, %.1f MiB at the end (%+.1f MiB)\n", rssStart, rssEnd, rssEnd-rssStart)
	return nil
}

// tally counts the answers of all clients.
type tally struct {
	mu        sync.Mutex
	latencies []time.Duration // of the 200s
	status    map[int]int
	failures  int // transport errors
	sent      int
}

// client sends requests one after another until the deadline (or maxReq requests in all, > 0).
func (t *tally) client(c *http.Client, url string, body []byte, deadline time.Time, maxReq int) {
	for time.Now().Before(deadline) {
		t.mu.Lock()
		if maxReq > 0 && t.sent >= maxReq {
			t.mu.Unlock()
			return
		}
		t.sent++
		t.mu.Unlock()
		st, d, err := send(c, url, body)
		t.mu.Lock()
		if err != nil {
			t.failures++
		} else {
			t.status[st]++
			if st == http.StatusOK {
				t.latencies = append(t.latencies, d)
			}
		}
		t.mu.Unlock()
		if st == http.StatusServiceUnavailable {
			time.Sleep(10 * time.Millisecond) // a client backs off a little on 503
		}
	}
}

func total(m map[int]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func pct(sorted []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))].Round(100 * time.Microsecond)
}

func send(c *http.Client, url string, body []byte) (int, time.Duration, error) {
	t0 := time.Now()
	resp, err := c.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, time.Since(t0), err
}

// requestBody is what the page sends while a user draws: a 280x280 black canvas with a white "7".
func requestBody() ([]byte, error) {
	img := image.NewRGBA(image.Rect(0, 0, 280, 280))
	for i := 3; i < len(img.Pix); i += 4 {
		img.Pix[i] = 255
	}
	white := color.RGBA{255, 255, 255, 255}
	for x := 80; x < 200; x++ { // the bar
		for y := 60; y < 80; y++ {
			img.Set(x, y, white)
		}
	}
	for y := 60; y < 230; y++ { // the stem, leaning left
		x0 := 190 - (y-60)*60/170
		for x := x0 - 10; x < x0+10; x++ {
			img.Set(x, y, white)
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, err
	}
	return fmt.Appendf(nil, `{"image": "data:image/png;base64,%s", "seed": 1}`, base64.StdEncoding.EncodeToString(buf.Bytes())), nil
}

// rssMiB is this process's resident set size (VmRSS of /proc/self/status; NaN elsewhere).
func rssMiB() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return math.NaN()
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var kb float64
		if n, _ := fmt.Sscanf(sc.Text(), "VmRSS: %f kB", &kb); n == 1 {
			return kb / 1024
		}
	}
	return math.NaN()
}

func cpuName() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}
