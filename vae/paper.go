package vae

// PaperTableI holds Table I of the paper (Zhan et al., arXiv 2310.14839): reconstruction MSE, IS, FID and
// FAD per data set and model kind.
var PaperTableI = map[string]map[string][4]float64{
	"mnist":   {KindESVAE: {0.013, 5.612, 117.8, 10.99}, KindFSVAE: {0.031, 6.209, 97.06, 35.54}, KindANNVAE: {0.048, 5.947, 112.5, 17.09}},
	"fashion": {KindESVAE: {0.019, 6.227, 125.3, 11.13}, KindFSVAE: {0.031, 4.551, 90.12, 15.75}, KindANNVAE: {0.050, 4.252, 123.7, 18.08}},
	"cifar10": {KindESVAE: {0.045, 3.758, 127.0, 14.74}, KindFSVAE: {0.066, 2.945, 175.5, 133.9}, KindANNVAE: {0.105, 2.591, 229.6, 196.9}},
	"celeba":  {KindESVAE: {0.034, 3.868, 85.33, 51.93}, KindFSVAE: {0.051, 3.697, 101.6, 112.9}, KindANNVAE: {0.059, 3.231, 92.53, 156.9}},
}

// PaperTemporal holds Table II: ESVAE's MSE after shuffling the latent spikes in time, against the
// image and against the unshuffled reconstruction.
var PaperTemporal = map[string][2]float64{
	"mnist": {0.0105, 0.0021}, "fashion": {0.0169, 0.0030}, "cifar10": {0.0434, 0.0031}, "celeba": {0.0330, 0.0037},
}

// PaperProbe holds Table IV: the encoder probe's test accuracy (%).
var PaperProbe = map[string]float64{"mnist": 98.09, "fashion": 88.59, "cifar10": 53.59}

// PaperTableV holds the published numbers of the attention variants of Table V:
// reconstruction MSE, IS, FID and FAD, 0 where none is published. Only TAID on FSVAE has numbers,
// from TAID's paper (repeated in ESVAE's Table I); the text of ESVAE's Table V is not available
// and PFA's paper gives no generation numbers of PFA alone.
var PaperTableV = map[string]map[string][4]float64{
	"cifar10": {"fsvae+taid": {0, 3.53, 171.1, 120.5}},
	"celeba":  {"fsvae+taid": {0, 4.31, 99.54, 105.3}},
}

// PaperNumbers returns the published MSE, IS, FID and FAD of a model (a Config.Variant name such as
// esvae, fsvae+taid) on a data set, 0 where none is published, and where they come from ("" when
// nothing is).
func PaperNumbers(data, variant string) (nums [4]float64, source string) {
	if n, ok := PaperTableI[data][variant]; ok {
		return n, "Table I"
	}
	if n, ok := PaperTableV[data][variant]; ok {
		return n, "TAID's paper (Qiu et al. 2023; in ESVAE's Table I)"
	}
	return nums, ""
}
