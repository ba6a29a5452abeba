package data

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/esvae-go/esvae/internal/approx"
)

func TestMNISTPlainAndGzip(t *testing.T) {
	for _, gzipped := range []bool{false, true} {
		dir := t.TempDir()
		writeMNIST(t, dir, 5, 3, gzipped)
		for _, sp := range []struct {
			split Split
			n     int
		}{{Train, 5}, {Test, 3}} {
			ds, err := Open("mnist", dir, sp.split)
			if err != nil {
				t.Fatal(err)
			}
			if ds.Len() != sp.n {
				t.Fatalf("gz %v %s: Len %d, want %d", gzipped, sp.split, ds.Len(), sp.n)
			}
			if c, h, w := ds.Shape(); c != 1 || h != 32 || w != 32 {
				t.Fatalf("Shape (%d,%d,%d), want (1,32,32)", c, h, w)
			}
			for k := 0; k < sp.n; k++ {
				img, label, err := ds.Get(k, rand.New(rand.NewPCG(1, 2)))
				if err != nil {
					t.Fatal(err)
				}
				if len(img) != 32*32 || label != k%10 {
					t.Fatalf("image %d: %d values, label %d", k, len(img), label)
				}
				// A constant image stays constant through the resize; x = 2*p/255 - 1.
				want := 2*(float32(mnistPixel(k))/255) - 1
				for _, v := range img {
					if v != want {
						t.Fatalf("image %d: value %v, want %v", k, v, want)
					}
				}
			}
		}
	}
	// Fashion-MNIST reads the same files.
	dir := t.TempDir()
	writeMNIST(t, filepath.Join(dir, "FashionMNIST", "raw"), 2, 2, true)
	if ds, err := Open("fashion", dir, Train); err != nil || ds.Len() != 2 {
		t.Fatalf("fashion in torchvision layout: %v", err)
	}
}

func TestScaling(t *testing.T) {
	dst := make([]float32, 3)
	toFloat(dst, []uint8{0, 255, 51})
	if dst[0] != -1 || dst[1] != 1 || approx.Exceeds(math.Abs(float64(dst[2]+0.6)), 1e-6) {
		t.Fatalf("toFloat = %v, want [-1 1 -0.6]", dst)
	}
}

// TestResizeLikePIL checks the bilinear resize against values computed by hand with PIL's algorithm
// (half-pixel centres, triangle filter, taps outside the image dropped and the rest renormalised; the
// filter widened by the scale factor when shrinking), rounded to 8 bits.
func TestResizeLikePIL(t *testing.T) {
	// Upscale a row 2 -> 4: centres at -0.25, 0.25, 0.75, 1.25 give [s0, .75s0+.25s1, .25s0+.75s1, s1].
	up := planes{c: 1, h: 1, w: 2, pix: []uint8{0, 200}}.resize(1, 4)
	if got, want := up.pix, []uint8{0, 50, 150, 200}; string(got) != string(want) {
		t.Errorf("upscale = %v, want %v", got, want)
	}
	// Downscale 4 -> 2: support 2, output 0 has taps 0,1,2 with weights .75,.75,.25:
	// (.25*255)/1.75 = 36.43 -> 36, and symmetrically 218.57 -> 219.
	down := planes{c: 1, h: 1, w: 4, pix: []uint8{0, 0, 255, 255}}.resize(1, 2)
	if got, want := down.pix, []uint8{36, 219}; string(got) != string(want) {
		t.Errorf("downscale = %v, want %v", got, want)
	}
	// Pillow 13.0.0: Image.fromarray(np.arange(12, dtype=np.uint8).reshape(3, 4) * 20)
	// .resize((5, 2), Image.BILINEAR) (shrinks rows 3 -> 2, widens columns 4 -> 5).
	ramp := planes{c: 1, h: 3, w: 4, pix: []uint8{0, 20, 40, 60, 80, 100, 120, 140, 160, 180, 200, 220}}.resize(2, 5)
	if got, want := ramp.pix, []uint8{30, 44, 60, 76, 90, 130, 144, 160, 176, 190}; string(got) != string(want) {
		t.Errorf("ramp = %v, want Pillow's %v", got, want)
	}
	// RGB planes stay separate.
	rgb := planes{c: 3, h: 1, w: 2, pix: []uint8{0, 200, 10, 10, 255, 255}}.resize(1, 4)
	if got, want := rgb.pix, []uint8{0, 50, 150, 200, 10, 10, 10, 10, 255, 255, 255, 255}; string(got) != string(want) {
		t.Errorf("rgb = %v, want %v", got, want)
	}
}

func TestCenterCrop(t *testing.T) {
	// torchvision: top = round((218-148)/2) = 35, left = round((178-148)/2) = 15.
	if roundHalfEven(70) != 35 || roundHalfEven(30) != 15 || roundHalfEven(5) != 2 || roundHalfEven(3) != 2 {
		t.Fatal("roundHalfEven does not round half to even")
	}
	p := planes{c: 1, h: 4, w: 5, pix: make([]uint8, 20)}
	for i := range p.pix {
		p.pix[i] = uint8(i)
	}
	// (4-2)/2 = 1, round(1.5) = 2.
	got := p.centerCrop(2).pix
	if want := []uint8{7, 8, 12, 13}; string(got) != string(want) {
		t.Fatalf("crop = %v, want %v", got, want)
	}
}

func TestMNISTErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := Open("mnist", dir, Train)
	wantErr(t, err, "train-images-idx3-ubyte", "put the", dir)

	writeMNIST(t, dir, 3, 2, false)
	img := filepath.Join(dir, "train-images-idx3-ubyte")
	good, _ := os.ReadFile(img)

	writeFile(t, img, good[:len(good)-10])
	_, err = Open("mnist", dir, Train)
	wantErr(t, err, img, "truncated")

	bad := append([]byte{}, good...)
	bad[3] = 2
	writeFile(t, img, bad)
	_, err = Open("mnist", dir, Train)
	wantErr(t, err, img, "bad magic")

	writeFile(t, img, idxBytes([]int{3, 27, 27}, make([]byte, 3*27*27)))
	_, err = Open("mnist", dir, Train)
	wantErr(t, err, img, "27x27")

	writeFile(t, img, idxBytes([]int{4, 28, 28}, make([]byte, 4*784)))
	_, err = Open("mnist", dir, Train)
	wantErr(t, err, "train-labels-idx1-ubyte", "3 labels", "4 images")

	gzPath := filepath.Join(dir, "t10k-images-idx3-ubyte.gz")
	os.Remove(filepath.Join(dir, "t10k-images-idx3-ubyte"))
	z := gz(t, good)
	writeFile(t, gzPath, z[:len(z)/2])
	_, err = Open("mnist", dir, Test)
	wantErr(t, err, gzPath, "gzip")

	_, err = Open("mnist", dir, Valid)
	wantErr(t, err, "no valid split")
}

func TestOpenUnknown(t *testing.T) {
	_, err := Open("imagenet", t.TempDir(), Train)
	wantErr(t, err, "imagenet", "celeba, cifar10, fashion, mnist")
	_, err = Open("mnist", filepath.Join(t.TempDir(), "nope"), Train)
	wantErr(t, err, "nope")
	if _, err := ParseSplit("validation"); err != nil {
		t.Fatal(err)
	}
}

func TestCIFARFolderAndArchive(t *testing.T) {
	files := cifarFileSet(4)
	folder := t.TempDir()
	for n, b := range files {
		writeFile(t, filepath.Join(folder, cifarFolder, n), b)
	}
	archive := t.TempDir()
	writeFile(t, filepath.Join(archive, cifarArchive), tarGz(t, files, cifarFolder+"/"))
	for _, dir := range []string{folder, archive} {
		train, err := Open("cifar10", dir, Train)
		if err != nil {
			t.Fatal(err)
		}
		test, err := Open("cifar10", dir, Test)
		if err != nil {
			t.Fatal(err)
		}
		if train.Len() != 20 || test.Len() != 4 {
			t.Fatalf("%s: Len train %d test %d, want 20 and 4", dir, train.Len(), test.Len())
		}
		if c, h, w := train.Shape(); c != 3 || h != 32 || w != 32 {
			t.Fatalf("Shape (%d,%d,%d)", c, h, w)
		}
		// Test record 1 is global record 21 (training files first): pixel (c,y,x) = (21 + 3c + x).
		img, label, err := test.Get(1, nil)
		if err != nil || label != 1 {
			t.Fatalf("Get: %v, label %d", err, label)
		}
		for _, at := range [][3]int{{0, 0, 0}, {1, 5, 7}, {2, 31, 31}} {
			p := float32(uint8(21 + 3*at[0] + at[2]))
			if got := img[at[0]*1024+at[1]*32+at[2]]; got != 2*(p/255)-1 {
				t.Fatalf("pixel %v = %v, want %v", at, got, 2*(p/255)-1)
			}
		}
		checkFlips(t, train, test)
	}
}

// checkFlips checks that training images are flipped for about half the seeds and test images never.
func checkFlips(t *testing.T, train, test Dataset) {
	t.Helper()
	_, h, w := train.Shape()
	flipped := 0
	const tries = 64
	i := min(3, train.Len()-1)
	for e := 0; e < tries; e++ {
		plain, _, _ := train.Get(i, nil)
		aug, _, err := train.Get(i, AugmentRand(7, e, i))
		if err != nil {
			t.Fatal(err)
		}
		if equal(aug, plain) {
			continue
		}
		if !equal(aug, mirror(plain, h, w)) {
			t.Fatal("augmented image is neither the image nor its mirror")
		}
		flipped++
	}
	if flipped < tries/4 || flipped > 3*tries/4 {
		t.Errorf("flipped %d of %d, want about half", flipped, tries)
	}
	plain, _, _ := test.Get(0, nil)
	for e := 0; e < 8; e++ {
		if aug, _, _ := test.Get(0, AugmentRand(7, e, 0)); !equal(aug, plain) {
			t.Fatal("test split was augmented")
		}
	}
}

func mirror(img []float32, h, w int) []float32 {
	out := make([]float32, len(img))
	for r := 0; r < len(img)/w; r++ {
		for x := 0; x < w; x++ {
			out[r*w+x] = img[r*w+w-1-x]
		}
	}
	return out
}

func equal(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestCIFARErrors(t *testing.T) {
	files := cifarFileSet(2)
	dir := t.TempDir()
	for n, b := range files {
		writeFile(t, filepath.Join(dir, cifarFolder, n), b)
	}
	p := filepath.Join(dir, cifarFolder, "data_batch_3.bin")
	writeFile(t, p, files["data_batch_3.bin"][:cifarRecord+100])
	_, err := Open("cifar10", dir, Train)
	wantErr(t, err, p, "truncated", "record 1")

	os.Remove(p)
	_, err = Open("cifar10", dir, Train)
	wantErr(t, err, p)

	empty := t.TempDir()
	_, err = Open("cifar10", empty, Test)
	wantErr(t, err, cifarArchive, "put the CIFAR-10")

	delete(files, "test_batch.bin")
	writeFile(t, filepath.Join(empty, cifarArchive), tarGz(t, files, cifarFolder+"/"))
	_, err = Open("cifar10", empty, Test)
	wantErr(t, err, cifarArchive, "test_batch.bin")

	z := tarGz(t, cifarFileSet(2), cifarFolder+"/")
	writeFile(t, filepath.Join(empty, cifarArchive), z[:len(z)/2])
	_, err = Open("cifar10", empty, Train)
	wantErr(t, err, cifarArchive, "truncated")
}

func TestCelebAFolderAndZip(t *testing.T) {
	folder, zipped := t.TempDir(), t.TempDir()
	writeCelebAFolder(t, folder)
	writeCelebAZip(t, zipped)
	for _, dir := range []string{folder, zipped} {
		lens := map[Split]int{Train: 3, Valid: 1, Test: 2}
		for split, n := range lens {
			ds, err := Open("celeba", dir, split)
			if err != nil {
				t.Fatal(err)
			}
			if ds.Len() != n {
				t.Fatalf("%s %s: Len %d, want %d", dir, split, ds.Len(), n)
			}
			if c, h, w := ds.Shape(); c != 3 || h != 64 || w != 64 {
				t.Fatalf("Shape (%d,%d,%d)", c, h, w)
			}
			img, _, err := ds.Get(0, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(img) != 3*64*64 {
				t.Fatalf("%d values", len(img))
			}
			// Red plane: black left half, white right half (JPEG blurs the edge a little).
			if !(img[10*64+2] <= -0.9 && img[10*64+61] >= 0.9) { // NaN fails too
				t.Fatalf("left %v right %v, want about -1 and 1", img[10*64+2], img[10*64+61])
			}
			if split == Train {
				test, _ := Open("celeba", dir, Test)
				checkFlips(t, ds, test)
				test.Close()
			}
			if err := ds.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestCelebAErrors(t *testing.T) {
	dir := t.TempDir()
	writeCelebAFolder(t, dir)
	part := filepath.Join(dir, celebaPartition)

	writeFile(t, part, []byte("000001.jpg 0\n000002.jpg 7\n"))
	_, err := Open("celeba", dir, Train)
	wantErr(t, err, part+":2", "bad line")

	os.Remove(part)
	_, err = Open("celeba", dir, Train)
	wantErr(t, err, celebaPartition, "put")

	writeFile(t, part, celebaPartitionText())
	bad := filepath.Join(dir, celebaFolder, celebaName(0))
	writeFile(t, bad, []byte("\xff\xd8\xffnot a jpeg"))
	ds, err := Open("celeba", dir, Train)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = ds.Get(0, nil)
	wantErr(t, err, bad, "corrupt JPEG")

	os.Remove(bad)
	_, err = Open("celeba", dir, Train)
	wantErr(t, err, celebaName(0), "not found")

	zdir := t.TempDir()
	writeFile(t, filepath.Join(zdir, celebaPartition), celebaPartitionText())
	writeFile(t, filepath.Join(zdir, celebaZip), []byte("PK garbage"))
	_, err = Open("celeba", zdir, Test)
	wantErr(t, err, celebaZip, "zip")
}

func TestSources(t *testing.T) {
	for _, n := range Names() {
		src, err := Sources(n)
		if err != nil || len(src) == 0 {
			t.Fatalf("%s: %v", n, err)
		}
		for _, s := range src {
			if s.File == "" || len(s.URLs) == 0 || len(s.MD5) != 32 || (s.SHA256 != "" && len(s.SHA256) != 64) {
				t.Errorf("%s: bad source %+v", n, s)
			}
		}
	}
	_, err := Sources("svhn")
	wantErr(t, err, "svhn", "mnist")
}
