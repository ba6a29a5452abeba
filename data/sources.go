package data

import (
	"fmt"
	"strings"
)

// Source is one file of a data set and where to download it.
type Source struct {
	// File is the name to save it under, in the data set's folder (the name Open looks for).
	File string
	// URLs are public mirrors, the preferred one first.
	URLs []string
	// MD5 is the checksum the data set's authors (or torchvision) publish.
	MD5 string
	// SHA256 is the file's SHA-256, which the download checks (see Sources for where each comes from).
	SHA256 string
	// Note says anything a downloader must know (Google Drive confirmation pages, unpacking).
	Note string
}

const (
	mnistS3   = "https://ossci-datasets.s3.amazonaws.com/mnist/"
	mnistGCS  = "https://storage.googleapis.com/cvdf-datasets/mnist/"
	fashionS3 = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
	fashionGH = "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"
	gdrive    = "https://drive.google.com/uc?export=download&id="
)

// Sources lists the files of data set name (see Names) with their public mirrors and checksums.
// MD5s are the published ones (torchvision's lists); downloads are checked by SHA-256. MNIST's were
// computed from the files in the GoMNIST module, whose MD5s match the published ones; CIFAR-10's is the
// one recorded next to its published MD5 and size (170,052,171 bytes); Fashion-MNIST's and CelebA's are
// those TensorFlow Datasets records for the same URLs (tensorflow_datasets/url_checksums/fashion_mnist.txt
// and celeb_a.txt, with the files' sizes: 26,421,880 / 29,515 / 4,422,102 / 5,148 bytes; the CelebA zip
// 1,443,490,838 and the partition list 2,836,386). HTTPS mirrors come first.
func Sources(name string) ([]Source, error) {
	switch strings.ToLower(name) {
	case "mnist":
		return idxSources([]string{mnistS3, mnistGCS}, [4][2]string{
			{"f68b3c2dcbeaaa9fbdd348bbdeb94873", "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"},
			{"d53e105ee54ea40749a09fcbcd1e9432", "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"},
			{"9fb629c4189551a2d022fa330f9573f3", "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"},
			{"ec29112dd5afa0611ce80d1b7f02629c", "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"},
		}), nil
	case "fashion":
		return idxSources([]string{fashionGH, fashionS3}, [4][2]string{
			{"8d4fb7e6c68d591d4c3dfef9ec88bf0d", "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"},
			{"25c81989df183df01b3e8a0aad5dffbe", "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"},
			{"bef4ecab320f06d8554ea6380940ec79", "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"},
			{"bb300cfdad3c16e7a12a480ee83cd310", "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"},
		}), nil
	case "cifar10":
		return []Source{{
			File:   cifarArchive,
			URLs:   []string{"https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"},
			MD5:    "c32a1d4ab5d03f1284b67883e8d87530",
			SHA256: "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
			Note:   "Open reads the archive as it is, or its unpacked folder cifar-10-batches-bin/",
		}}, nil
	case "celeba":
		const drive = "Google Drive answers large files with a confirmation page; a downloader must follow its confirm link"
		return []Source{
			{
				File:   celebaZip,
				URLs:   []string{gdrive + "1zmsC4yvw-e089uHXj5EdP0BSZ0AlDQRR", gdrive + "0B7EVK8r0v71pZjFTYXZWM3FlRnM"},
				MD5:    "00d2c5bc6d35e252742224ab0c1e8fcb",
				SHA256: "46fb89443c578308acf364d7d379fe1b9efb793042c0af734b6112e4fd3a8c74",
				Note:   drive + "; Open reads the zip as it is, or its unpacked folder img_align_celeba/",
			},
			{
				File:   celebaPartition,
				URLs:   []string{gdrive + "1ih_VMokoI774ErNWrb26lDeWlanUBpnX", gdrive + "0B7EVK8r0v71pY0NSMzRuSXJEVkk"},
				MD5:    "d32c9cbf5e040fd4025c592c306e6668",
				SHA256: "fc955bcb3ef8fbdf7d5640d9a8693a8431b5f2ee291a5c1449a1549e7e073fe7",
			},
		}, nil
	}
	return nil, fmt.Errorf("data: unknown data set %q: valid names are %s", name, strings.Join(Names(), ", "))
}

// idxSources lists the four IDX files under each base URL; sums holds (MD5, SHA-256) in the order
// train images, train labels, test images, test labels.
func idxSources(bases []string, sums [4][2]string) []Source {
	files := []string{"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"}
	out := make([]Source, len(files))
	for i, f := range files {
		out[i] = Source{File: f, MD5: sums[i][0], SHA256: sums[i][1]}
		for _, b := range bases {
			out[i].URLs = append(out[i].URLs, b+f)
		}
	}
	return out
}
