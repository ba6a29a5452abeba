package tb

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	_ "image/jpeg" // DecodeConfig of JPEG images
	_ "image/png"  // DecodeConfig of PNG images
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// FilePrefix starts the name of every event file; TensorBoard reads files whose name contains
// "tfevents", in the order of their names.
const FilePrefix = "events.out.tfevents."

// Field numbers of TensorBoard's protos (tensorboard/compat/proto/*.proto).
const (
	eventWallTime    = 1 // double
	eventStep        = 2 // int64
	eventFileVersion = 3 // string
	eventSummary     = 5 // Summary
	eventSessionLog  = 7 // SessionLog

	sessionLogStatus = 1 // enum SessionStatus
	sessionLogMsg    = 3 // string
	sessionStart     = 1 // SessionLog.START

	summaryValue = 1 // repeated Summary.Value

	valueTag         = 1 // string
	valueSimpleValue = 2 // float
	valueImage       = 4 // Summary.Image
	valueHisto       = 5 // HistogramProto
	valueTensor      = 8 // TensorProto
	valueMetadata    = 9 // SummaryMetadata

	imageHeight     = 1 // int32
	imageWidth      = 2 // int32
	imageColorspace = 3 // int32: 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA
	imageEncoded    = 4 // bytes (PNG or JPEG)

	histoMin         = 1 // double
	histoMax         = 2 // double
	histoNum         = 3 // double
	histoSum         = 4 // double
	histoSumSquares  = 5 // double
	histoBucketLimit = 6 // packed repeated double
	histoBucket      = 7 // packed repeated double

	metadataPluginData = 1 // SummaryMetadata.PluginData
	metadataDataClass  = 4 // enum DataClass
	pluginName         = 1 // string
	dataClassTensor    = 2 // DATA_CLASS_TENSOR

	tensorDtype     = 1 // enum DataType
	tensorShape     = 2 // TensorShapeProto
	tensorStringVal = 8 // repeated bytes
	dtString        = 7 // DT_STRING

	pluginContent = 2 // bytes: SummaryMetadata.PluginData.content

	// tensorboard/plugins/hparams/plugin_data.proto and google/protobuf/struct.proto
	hparamsVersion      = 1 // int32 HParamsPluginData.version
	hparamsSessionStart = 3 // SessionStartInfo HParamsPluginData.session_start_info
	sessionHParams      = 1 // map<string, google.protobuf.Value> SessionStartInfo.hparams
	sessionStartTime    = 5 // double SessionStartInfo.start_time_secs
	mapKey, mapValue    = 1, 2
	valueNumber         = 2 // double google.protobuf.Value.number_value
	valueString         = 3 // string google.protobuf.Value.string_value
	valueBool           = 4 // bool google.protobuf.Value.bool_value
)

// Writer appends events to one event file.
type Writer struct {
	f    *os.File
	w    *bufio.Writer
	path string
	err  error // the first write error; later calls return it
}

// Create starts a new event file in dir (created if missing). Its name sorts after every event
// file already there (TensorBoard reads a folder's files in name order), and its first event is
// the file version TensorBoard expects ("brain.Event:2"; with it TensorBoard honours SessionLog
// START events, see Writer.Start).
func Create(dir string) (*Writer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("tensorboard: %w", err)
	}
	stamp := time.Now().Unix()
	old, err := filepath.Glob(filepath.Join(dir, FilePrefix+"*"))
	if err != nil {
		return nil, fmt.Errorf("tensorboard: %w", err)
	}
	for _, p := range old {
		// events.out.tfevents.<seconds>.<host>...: a later file gets a later stamp, also within
		// one second or when the clock went back, so that it sorts last.
		s, _, _ := strings.Cut(strings.TrimPrefix(filepath.Base(p), FilePrefix), ".")
		if v, err := strconv.ParseInt(s, 10, 64); err == nil && v >= stamp {
			stamp = v + 1
		}
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	host = strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r < ' ' {
			return '_'
		}
		return r
	}, host)
	path := filepath.Join(dir, fmt.Sprintf("%s%010d.%s.%d.esvae", FilePrefix, stamp, host, os.Getpid()))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("tensorboard: %w", err)
	}
	w := &Writer{f: f, w: bufio.NewWriterSize(f, 1<<16), path: path}
	var ev []byte
	ev = protowire.AppendTag(ev, eventFileVersion, protowire.BytesType)
	ev = protowire.AppendString(ev, "brain.Event:2")
	w.event(0, ev)
	if err := w.Flush(); err != nil {
		f.Close()
		return nil, err
	}
	return w, nil
}

// Path is the event file's path.
func (w *Writer) Path() string { return w.path }

// Start writes a SessionLog START event at step: TensorBoard then drops every event of the earlier
// files of the folder at step >= step (its purge of orphaned data, as PyTorch's
// SummaryWriter(purge_step=step) asks for). A resumed run calls it with the first step it will
// write, so steps logged after its checkpoint by the interrupted session show once, from the
// resumed one. Every session, a fresh one too (at step 0), must begin with Start: the reader of
// TensorBoard's server (plugin_event_accumulator) takes the first START it sees for the start of
// the run and purges only on later ones.
func (w *Writer) Start(step int64, msg string) {
	var sl []byte
	sl = protowire.AppendTag(sl, sessionLogStatus, protowire.VarintType)
	sl = protowire.AppendVarint(sl, sessionStart)
	if msg != "" {
		sl = protowire.AppendTag(sl, sessionLogMsg, protowire.BytesType)
		sl = protowire.AppendString(sl, msg)
	}
	var ev []byte
	ev = protowire.AppendTag(ev, eventSessionLog, protowire.BytesType)
	ev = protowire.AppendBytes(ev, sl)
	w.event(step, ev)
}

// Scalar logs v under tag at step (a float32, as TensorBoard stores scalars).
func (w *Writer) Scalar(tag string, step int64, v float64) {
	var val []byte
	val = protowire.AppendTag(val, valueTag, protowire.BytesType)
	val = protowire.AppendString(val, tag)
	val = protowire.AppendTag(val, valueSimpleValue, protowire.Fixed32Type)
	val = protowire.AppendFixed32(val, math.Float32bits(float32(v)))
	w.summary(step, val)
}

// Image logs an encoded PNG or JPEG image under tag at step; its size and colour space come from
// the image's header.
func (w *Writer) Image(tag string, step int64, encoded []byte) error {
	cfg, _, err := image.DecodeConfig(bytes.NewReader(encoded))
	if err != nil {
		return fmt.Errorf("tensorboard: image %s: %w", tag, err)
	}
	space := 3 // RGB
	switch cfg.ColorModel {
	case color.GrayModel, color.Gray16Model:
		space = 1
	case color.RGBAModel, color.NRGBAModel, color.RGBA64Model, color.NRGBA64Model:
		space = 4
	}
	var im []byte
	im = protowire.AppendTag(im, imageHeight, protowire.VarintType)
	im = protowire.AppendVarint(im, uint64(cfg.Height))
	im = protowire.AppendTag(im, imageWidth, protowire.VarintType)
	im = protowire.AppendVarint(im, uint64(cfg.Width))
	im = protowire.AppendTag(im, imageColorspace, protowire.VarintType)
	im = protowire.AppendVarint(im, uint64(space))
	im = protowire.AppendTag(im, imageEncoded, protowire.BytesType)
	im = protowire.AppendBytes(im, encoded)
	var val []byte
	val = protowire.AppendTag(val, valueTag, protowire.BytesType)
	val = protowire.AppendString(val, tag)
	val = protowire.AppendTag(val, valueImage, protowire.BytesType)
	val = protowire.AppendBytes(val, im)
	w.summary(step, val)
	return nil
}

// Histogram logs the distribution of values under tag at step, in buckets equal-width bins
// between their minimum and maximum (a bucket holds the values in (previous limit, its limit]).
// Non-finite values are left out; with no finite value nothing is written.
func (w *Writer) Histogram(tag string, step int64, values []float64, buckets int) {
	lo, hi := math.Inf(1), math.Inf(-1)
	var n, sum, sq float64
	for _, v := range values {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		lo, hi = min(lo, v), max(hi, v)
		n++
		sum += v
		sq += v * v
	}
	if n == 0 {
		return
	}
	buckets = max(buckets, 1)
	if hi == lo {
		buckets = 1
	}
	limits := make([]float64, buckets)
	counts := make([]float64, buckets)
	width := (hi - lo) / float64(buckets)
	for i := range limits {
		limits[i] = lo + float64(i+1)*width
	}
	limits[buckets-1] = hi
	for _, v := range values {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		i := 0
		if width > 0 {
			i = int(math.Ceil((v-lo)/width)) - 1
		}
		counts[min(max(i, 0), buckets-1)]++
	}
	var h []byte
	for _, f := range []struct {
		num protowire.Number
		v   float64
	}{{histoMin, lo}, {histoMax, hi}, {histoNum, n}, {histoSum, sum}, {histoSumSquares, sq}} {
		h = protowire.AppendTag(h, f.num, protowire.Fixed64Type)
		h = protowire.AppendFixed64(h, math.Float64bits(f.v))
	}
	h = appendPacked(h, histoBucketLimit, limits)
	h = appendPacked(h, histoBucket, counts)
	var val []byte
	val = protowire.AppendTag(val, valueTag, protowire.BytesType)
	val = protowire.AppendString(val, tag)
	val = protowire.AppendTag(val, valueHisto, protowire.BytesType)
	val = protowire.AppendBytes(val, h)
	w.summary(step, val)
}

func appendPacked(b []byte, num protowire.Number, vs []float64) []byte {
	var p []byte
	for _, v := range vs {
		p = protowire.AppendFixed64(p, math.Float64bits(v))
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, p)
}

// Text logs text (Markdown, as TensorBoard's text dashboard renders it) under tag at step: a
// string tensor with the text plugin's metadata, as TensorBoard's own text summary writes it.
func (w *Writer) Text(tag string, step int64, text string) {
	var pd []byte
	pd = protowire.AppendTag(pd, pluginName, protowire.BytesType)
	pd = protowire.AppendString(pd, "text")
	var md []byte
	md = protowire.AppendTag(md, metadataPluginData, protowire.BytesType)
	md = protowire.AppendBytes(md, pd)
	md = protowire.AppendTag(md, metadataDataClass, protowire.VarintType)
	md = protowire.AppendVarint(md, dataClassTensor)
	var t []byte
	t = protowire.AppendTag(t, tensorDtype, protowire.VarintType)
	t = protowire.AppendVarint(t, dtString)
	t = protowire.AppendTag(t, tensorShape, protowire.BytesType)
	t = protowire.AppendBytes(t, nil) // a scalar: no dimensions
	t = protowire.AppendTag(t, tensorStringVal, protowire.BytesType)
	t = protowire.AppendString(t, text)
	var val []byte
	val = protowire.AppendTag(val, valueTag, protowire.BytesType)
	val = protowire.AppendString(val, tag)
	val = protowire.AppendTag(val, valueMetadata, protowire.BytesType)
	val = protowire.AppendBytes(val, md)
	val = protowire.AppendTag(val, valueTensor, protowire.BytesType)
	val = protowire.AppendBytes(val, t)
	w.summary(step, val)
}

// HParams logs a run's hyperparameters for TensorBoard's HParams dashboard, as PyTorch's
// SummaryWriter.add_hparams does: a SessionStartInfo under the tag "_hparams_/session_start_info"
// with the hparams plugin's metadata. Values are float64, int, int64, bool or string; any other
// type is written as its fmt %v text. TensorBoard takes the metrics from the run's scalars.
func (w *Writer) HParams(step int64, hparams map[string]any) {
	keys := make([]string, 0, len(hparams))
	for k := range hparams {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var ssi []byte
	for _, k := range keys {
		var v []byte
		switch x := hparams[k].(type) {
		case float64:
			v = protowire.AppendTag(v, valueNumber, protowire.Fixed64Type)
			v = protowire.AppendFixed64(v, math.Float64bits(x))
		case int:
			v = protowire.AppendTag(v, valueNumber, protowire.Fixed64Type)
			v = protowire.AppendFixed64(v, math.Float64bits(float64(x)))
		case int64:
			v = protowire.AppendTag(v, valueNumber, protowire.Fixed64Type)
			v = protowire.AppendFixed64(v, math.Float64bits(float64(x)))
		case bool:
			v = protowire.AppendTag(v, valueBool, protowire.VarintType)
			v = protowire.AppendVarint(v, protowire.EncodeBool(x))
		default:
			v = protowire.AppendTag(v, valueString, protowire.BytesType)
			v = protowire.AppendString(v, fmt.Sprint(x))
		}
		var e []byte
		e = protowire.AppendTag(e, mapKey, protowire.BytesType)
		e = protowire.AppendString(e, k)
		e = protowire.AppendTag(e, mapValue, protowire.BytesType)
		e = protowire.AppendBytes(e, v)
		ssi = protowire.AppendTag(ssi, sessionHParams, protowire.BytesType)
		ssi = protowire.AppendBytes(ssi, e)
	}
	ssi = protowire.AppendTag(ssi, sessionStartTime, protowire.Fixed64Type)
	ssi = protowire.AppendFixed64(ssi, math.Float64bits(float64(time.Now().UnixNano())/1e9))
	var content []byte
	content = protowire.AppendTag(content, hparamsVersion, protowire.VarintType)
	content = protowire.AppendVarint(content, 0)
	content = protowire.AppendTag(content, hparamsSessionStart, protowire.BytesType)
	content = protowire.AppendBytes(content, ssi)
	var pd []byte
	pd = protowire.AppendTag(pd, pluginName, protowire.BytesType)
	pd = protowire.AppendString(pd, "hparams")
	pd = protowire.AppendTag(pd, pluginContent, protowire.BytesType)
	pd = protowire.AppendBytes(pd, content)
	var md []byte
	md = protowire.AppendTag(md, metadataPluginData, protowire.BytesType)
	md = protowire.AppendBytes(md, pd)
	var val []byte
	val = protowire.AppendTag(val, valueTag, protowire.BytesType)
	val = protowire.AppendString(val, "_hparams_/session_start_info")
	val = protowire.AppendTag(val, valueMetadata, protowire.BytesType)
	val = protowire.AppendBytes(val, md)
	w.summary(step, val)
}

// summary wraps one Summary.Value in a Summary in an Event.
func (w *Writer) summary(step int64, value []byte) {
	var s []byte
	s = protowire.AppendTag(s, summaryValue, protowire.BytesType)
	s = protowire.AppendBytes(s, value)
	var ev []byte
	ev = protowire.AppendTag(ev, eventSummary, protowire.BytesType)
	ev = protowire.AppendBytes(ev, s)
	w.event(step, ev)
}

// event writes an Event with the wall time, step and the given fields as one record.
func (w *Writer) event(step int64, fields []byte) {
	if w.err != nil {
		return
	}
	now := time.Now()
	var ev []byte
	ev = protowire.AppendTag(ev, eventWallTime, protowire.Fixed64Type)
	ev = protowire.AppendFixed64(ev, math.Float64bits(float64(now.UnixNano())/1e9))
	ev = protowire.AppendTag(ev, eventStep, protowire.VarintType)
	ev = protowire.AppendVarint(ev, uint64(step))
	ev = append(ev, fields...)
	if _, err := w.w.Write(Record(ev)); err != nil {
		w.err = fmt.Errorf("tensorboard: %s: %w", w.path, err)
	}
}

// Flush hands the buffered events to the operating system; it returns the first error of any
// write so far.
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	if err := w.w.Flush(); err != nil {
		w.err = fmt.Errorf("tensorboard: %s: %w", w.path, err)
	}
	return w.err
}

// Close flushes and closes the file. Closing twice is harmless.
func (w *Writer) Close() error {
	if errors.Is(w.err, ErrClosed) {
		return nil
	}
	err := w.Flush()
	if cerr := w.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("tensorboard: %s: %w", w.path, cerr)
	}
	if w.err == nil {
		w.err = ErrClosed // later writes do nothing
	}
	return err
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// MaskedCRC is TFRecord's checksum: the CRC-32C of b, rotated right by 15 bits plus 0xa282ead8.
func MaskedCRC(b []byte) uint32 {
	c := crc32.Checksum(b, castagnoli)
	return (c>>15 | c<<17) + 0xa282ead8
}

// Record frames data as one TFRecord: uint64 length (little endian), masked CRC of those 8
// bytes, data, masked CRC of data.
func Record(data []byte) []byte {
	b := make([]byte, 12, 16+len(data))
	binary.LittleEndian.PutUint64(b, uint64(len(data)))
	binary.LittleEndian.PutUint32(b[8:], MaskedCRC(b[:8]))
	b = append(b, data...)
	return binary.LittleEndian.AppendUint32(b, MaskedCRC(data))
}

// ReadRecords splits a file's bytes into its TFRecords' payloads, checking both checksums of each.
func ReadRecords(b []byte) ([][]byte, error) {
	var out [][]byte
	for off := 0; off < len(b); {
		if len(b)-off < 12 {
			return out, fmt.Errorf("tensorboard: record at byte %d: %d bytes left, a header needs 12", off, len(b)-off)
		}
		n := binary.LittleEndian.Uint64(b[off:])
		if MaskedCRC(b[off:off+8]) != binary.LittleEndian.Uint32(b[off+8:]) {
			return out, fmt.Errorf("tensorboard: record at byte %d: length checksum mismatch", off)
		}
		if n > uint64(len(b)-off-16) {
			return out, fmt.Errorf("tensorboard: record at byte %d: length %d past the end", off, n)
		}
		data := b[off+12 : off+12+int(n)]
		if MaskedCRC(data) != binary.LittleEndian.Uint32(b[off+12+int(n):]) {
			return out, fmt.Errorf("tensorboard: record at byte %d: data checksum mismatch", off)
		}
		out = append(out, data)
		off += 16 + int(n)
	}
	return out, nil
}

// ErrClosed is returned by a write after Close.
var ErrClosed = errors.New("tensorboard: writer closed")
