package vis

// Interleave lays out n inputs and their reconstructions (each of size values) as alternating
// rows of nrow images, for a grid of inputs (odd rows) beside outputs (even rows).
func Interleave(in, out []float32, n, size, nrow int) []float32 {
	var g []float32
	for r := 0; r < n; r += nrow {
		k := min(nrow, n-r)
		g = append(g, in[r*size:(r+k)*size]...)
		g = append(g, out[r*size:(r+k)*size]...)
	}
	return g
}
