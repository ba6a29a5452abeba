# shellcheck shell=bash
# The CUDA 12.1 runtime wheels that torch==2.1.0 pins (its METADATA Requires-Dist), with their SHA-256.
# Sourced by setup.sh for ESVAE_DEVICE=cuda; the result runs with nothing but the NVIDIA driver.
WHEELS_CUDA=(
  "nvidia-cuda-nvrtc-cu12==12.1.105 339b385f50c309763ca65456ec75e17bbefcbbf2893f462cb8b90584cd27a1c2"
  "nvidia-cudnn-cu12==8.9.2.26 5ccb288774fdfb07a7e7025ffec286971c06d8d7b4fb162525334616d7629ff9"
  "nvidia-cublas-cu12==12.1.3.1 ee53ccca76a6fc08fb9701aa95b6ceb242cdaab118c3bb152af4e579af792728"
  "nvidia-cufft-cu12==11.0.2.54 794e3948a1aa71fd817c3775866943936774d1c14e7628c74f6f7417224cdf56"
  "nvidia-curand-cu12==10.3.2.106 9d264c5036dde4e64f1de8c50ae753237c12e0b1348738169cd0f8a536c0e1e0"
  "nvidia-cusolver-cu12==11.4.5.107 8a7ec542f0412294b15072fa7dab71d31334014a69f953004ea7a118206fe0dd"
  "nvidia-cusparse-cu12==12.1.0.106 f3b50f42cf363f86ab21f720998517a659a48131e8d538dc02f8768237bd884c"
  "nvidia-nccl-cu12==2.18.1 1a6c4acefcbebfa6de320f412bf7866de856e786e0462326ba1bac40de0b5e71"
  "nvidia-nvtx-cu12==12.1.105 dc21cf308ca5691e7c04d962e213f8a4aa9bbfa23d95412f452254c2caeb09e5"
  "nvidia-nvjitlink-cu12==12.1.105 015fed699b390ce3b8a8578d822d501a4194d0a341d3859554067c1ab291cb85"
)
