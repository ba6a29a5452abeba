// Package tb writes TensorBoard event files without TensorFlow: the TFRecord framing (length,
// masked CRC-32C of the length, payload, masked CRC-32C of the payload) around Event protobufs,
// hand-encoded with protowire from the field numbers of TensorBoard's public protos
// (tensorboard/compat/proto: event.proto, summary.proto, histogram.proto, tensor.proto,
// tensor_shape.proto). It covers what training logs: scalars, PNG images, histograms and text.
//
// A Writer is not safe for concurrent use: the trainer calls it from its one goroutine.
//
// Imports: none of the project's packages (protowire only); tbtest, its test reader, is for tests
// alone.
package tb
