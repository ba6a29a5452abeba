package vis

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sync"
)

// Record is one line of the metrics log. Non-finite numbers (a diverged loss) are written as null and read
// back as NaN, so the file stays valid JSON.
type Record struct {
	Split        string             `json:"split,omitempty"` // "train" or "test"
	Epoch        int                `json:"epoch"`
	Step         int                `json:"step"`
	Loss         float64            `json:"loss"`
	MSE          float64            `json:"mse"`
	MMD          float64            `json:"mmd"`
	MeanRQ       float64            `json:"mean_r_q"` // mean posterior firing rate
	MeanRP       float64            `json:"mean_r_p"` // mean prior firing rate
	ImagesPerSec float64            `json:"images_per_s"`
	Seconds      float64            `json:"seconds"`
	Extra        map[string]float64 `json:"extra,omitempty"`
}

// jsonRecord mirrors Record with nullable numbers.
type jsonRecord struct {
	Split        string              `json:"split,omitempty"`
	Epoch        int                 `json:"epoch"`
	Step         int                 `json:"step"`
	Loss         *float64            `json:"loss"`
	MSE          *float64            `json:"mse"`
	MMD          *float64            `json:"mmd"`
	MeanRQ       *float64            `json:"mean_r_q"`
	MeanRP       *float64            `json:"mean_r_p"`
	ImagesPerSec *float64            `json:"images_per_s"`
	Seconds      *float64            `json:"seconds"`
	Extra        map[string]*float64 `json:"extra,omitempty"`
}

func finite(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

func orNaN(v *float64) float64 {
	if v == nil {
		return math.NaN()
	}
	return *v
}

// MarshalJSON writes non-finite numbers as null.
func (r Record) MarshalJSON() ([]byte, error) {
	j := jsonRecord{Split: r.Split, Epoch: r.Epoch, Step: r.Step, Loss: finite(r.Loss), MSE: finite(r.MSE),
		MMD: finite(r.MMD), MeanRQ: finite(r.MeanRQ), MeanRP: finite(r.MeanRP),
		ImagesPerSec: finite(r.ImagesPerSec), Seconds: finite(r.Seconds)}
	if r.Extra != nil {
		j.Extra = make(map[string]*float64, len(r.Extra))
		for k, v := range r.Extra {
			j.Extra[k] = finite(v)
		}
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads null numbers as NaN.
func (r *Record) UnmarshalJSON(b []byte) error {
	var j jsonRecord
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*r = Record{Split: j.Split, Epoch: j.Epoch, Step: j.Step, Loss: orNaN(j.Loss), MSE: orNaN(j.MSE),
		MMD: orNaN(j.MMD), MeanRQ: orNaN(j.MeanRQ), MeanRP: orNaN(j.MeanRP),
		ImagesPerSec: orNaN(j.ImagesPerSec), Seconds: orNaN(j.Seconds)}
	if j.Extra != nil {
		r.Extra = make(map[string]float64, len(j.Extra))
		for k, v := range j.Extra {
			r.Extra[k] = orNaN(v)
		}
	}
	return nil
}

// MetricsLog appends Records as JSON lines to a file. It is safe for concurrent use.
type MetricsLog struct {
	mu   sync.Mutex
	f    *os.File
	path string
}

// OpenMetricsLog opens path for appending, creating it if needed. A last line without its newline (a
// crash in the middle of a write) is cut off, so the file holds whole records only.
func OpenMetricsLog(path string) (*MetricsLog, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("vis: metrics log: %w", err)
	}
	if err := cutPartialLine(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("vis: metrics log %s: %w", path, err)
	}
	return &MetricsLog{f: f, path: path}, nil
}

// cutPartialLine truncates f after its last newline (to empty if it has none).
func cutPartialLine(f *os.File) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	end := st.Size()
	buf := make([]byte, 4096)
	for pos := end; pos > 0; {
		n := min(int64(len(buf)), pos)
		pos -= n
		if _, err := f.ReadAt(buf[:n], pos); err != nil {
			return err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			if keep := pos + int64(i) + 1; keep < end {
				return f.Truncate(keep)
			}
			return nil
		}
	}
	if end > 0 {
		return f.Truncate(0)
	}
	return nil
}

// Write appends one record as a line. It does not sync; call Sync at the end of each epoch.
func (m *MetricsLog) Write(r Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("vis: metrics log %s: %w", m.path, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.f == nil {
		return fmt.Errorf("vis: metrics log %s is closed", m.path)
	}
	if _, err := m.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("vis: metrics log: %w", err)
	}
	return nil
}

// Sync flushes the file to disk (fsync); call it once per epoch.
func (m *MetricsLog) Sync() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.f == nil {
		return nil
	}
	if err := m.f.Sync(); err != nil {
		return fmt.Errorf("vis: metrics log: %w", err)
	}
	return nil
}

// Close syncs and closes the file. It is safe to call more than once.
func (m *MetricsLog) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.f == nil {
		return nil
	}
	err := errors.Join(m.f.Sync(), m.f.Close())
	m.f = nil
	if err != nil {
		return fmt.Errorf("vis: metrics log: %w", err)
	}
	return nil
}

// ReadMetrics reads the records of a metrics log. A last line cut short by a crash is ignored; any other
// bad line is an error naming the file and line.
func ReadMetrics(path string) ([]Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("vis: %w", err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	var out []Record
	for line := 1; ; line++ {
		b, err := br.ReadBytes('\n')
		complete := err == nil
		if err != nil && err != io.EOF {
			return out, fmt.Errorf("vis: %s: %w", path, err)
		}
		if t := bytes.TrimSpace(b); len(t) > 0 {
			var r Record
			if jerr := json.Unmarshal(t, &r); jerr != nil {
				if !complete {
					return out, nil // cut short by a crash
				}
				return out, fmt.Errorf("vis: %s:%d: bad record (%v): the file is damaged", path, line, jerr)
			}
			out = append(out, r)
		}
		if !complete {
			return out, nil
		}
	}
}
