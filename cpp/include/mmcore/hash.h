// Perceptual hashes: imagehash's aHash, dHash, dHash-vertical, pHash, pHash-simple, wHash and
// colorhash, and Meta's PDQ (256 bits + quality, 8 dihedral variants). Definitions:
// ../shared/SPEC-hashes.md (the repository's docs/hashes.md says how to choose one).
//
// Contract
// - Exact mode: the same bits as imagehash 4.3.2 on Pillow 13.0.0 (decode at full size, no EXIF
//   rotation, Pillow's convert("L"), LANCZOS in Pillow's fixed point, float64 transforms), and as
//   the PDQ C++ reference (squash to 512x512 when larger, float32 arithmetic in the reference's
//   order). PDQ full mode: pdqhash 0.2.8's `compute` on the full-size RGB image (no squash).
// - Fast mode: JPEG scaled IDCT (fast IDCT, no fancy upsampling), luma as coded, EXIF orientation
//   applied (optional), then the same resize and transforms; not bit-exact, its agreement with
//   exact mode is measured and documented.
// - Bit order: imagehash's (row-major, element [0,0] is the most significant bit). PDQ bytes are
//   the reference hex read as big-endian bytes: bytes[0] is the high byte of the reference's
//   word 15.
// - Pixel kernels never allocate more than the scratch they state; the byte-level entry points
//   allocate their decode buffers per call. Nothing throws across the API except std::bad_alloc
//   (batch callers turn it into Status::kNoMemory). Thread safety: reentrant, no shared state.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "mmcore/decode.h"
#include "mmcore/image.h"
#include "mmcore/resize.h"
#include "mmcore/workspace.h"

namespace mmcore {

enum class HashKind : std::uint8_t {
  kAhash = 0,
  kDhash = 1,
  kDhashVertical = 2,
  kPhash = 3,
  kPhashSimple = 4,
  kWhash = 5,
  kColorhash = 6,  ///< 42 bits (14 values x 3 bits), low bits of the uint64
  kPdq = 7,
};
constexpr int kHashKindCount = 8;

enum class HashMode : std::uint8_t {
  kExact = 0,    ///< imagehash-exact; PDQ reference-exact (512x512 squash)
  kPdqFull = 1,  ///< imagehash kinds exact; PDQ on the full-size image (pdqhash.compute)
  kFast = 2,     ///< scaled decode, luma as coded, area resize, EXIF orientation by default
};

/// One PDQ hash as the reference prints it, big-endian.
struct PdqHash {
  std::uint8_t bytes[32] = {0};
};

/// What to compute for one image: a bit per HashKind.
struct HashRequest {
  std::uint32_t kinds = 0;  ///< bit (1 << HashKind)
  HashMode mode = HashMode::kExact;
  bool pdq_dihedral = false;     ///< also the 7 dihedral PDQ variants
  bool exif_orientation = true;  ///< fast mode only (exact modes never rotate)
  std::int64_t max_pixels = kDefaultMaxPixels;
  /// imagehash's size parameters. hash_size (aHash, dHash, dHash-vertical, pHash, pHash-simple,
  /// wHash): 2..64, a power of 2 for wHash. highfreq_factor (pHash, pHash-simple): >= 1, with
  /// hash_size x highfreq_factor up to 1024 and no prime factor over 5 (and > hash_size for
  /// pHash-simple). binbits (colorhash): 1..16. A kind at its default sizes writes
  /// HashRecord::bits, a kind at other sizes HashRecord::wide (sized(kind)); sizes out of range
  /// make the record kUnsupported (hash_sizes_valid).
  std::int32_t hash_size = 8;
  std::int32_t highfreq_factor = 4;
  std::int32_t binbits = 3;
  bool wants(HashKind k) const { return (kinds >> static_cast<int>(k)) & 1u; }
  /// Whether kind k is computed at sizes other than imagehash's defaults.
  bool sized(HashKind k) const {
    switch (k) {
      case HashKind::kColorhash: return binbits != 3;
      case HashKind::kPdq: return false;
      case HashKind::kPhash:
      case HashKind::kPhashSimple: return hash_size != 8 || highfreq_factor != 4;
      default: return hash_size != 8;
    }
  }
};

/// How many bits kind k has at the request's sizes (hash_size^2; colorhash 14 x binbits; PDQ 256).
std::int32_t hash_bit_count(HashKind k, const HashRequest& request);
/// Whether the request's sizes are in range for the kinds it asks for at other sizes (else false,
/// with the reason in error). hash_image / hash_bytes check it too (kUnsupported).
bool hash_sizes_valid(const HashRequest& request, ErrorText* error);

/// One image's hashes; only the kinds requested are written.
struct HashRecord {
  std::uint64_t bits[kHashKindCount] = {0};  ///< the 64-bit kinds (and colorhash's 42 bits)
  /// A kind at other sizes (HashRequest::sized): its bits as one big-endian integer of
  /// ceil(bits / 8) bytes, imagehash's element [0, 0] its most significant bit (so that the hex of
  /// the integer, ceil(bits / 4) digits, is imagehash's str()). Empty for the other kinds.
  std::vector<std::uint8_t> wide[kHashKindCount];
  PdqHash pdq[8];  ///< [0] the hash; [1..7] dihedral when asked
  std::int32_t pdq_quality = 0;
};

// ---- pixel kernels (decoded images in) ----

/// Pillow's convert("L") of an RGB or RGBA image (alpha ignored): (19595 R + 38470 G + 7471 B
/// + 0x8000) >> 16. One channel is copied. dst: 1 channel, src's size.
void gray_pillow(ConstImageView src, ImageView dst);

/// imagehash average_hash / dhash / dhash_vertical / phash / phash_simple (hash_size 8) of a
/// one-channel image at any size, resized with `filter` (kLanczos3 = imagehash-exact).
std::uint64_t ahash_gray(ConstImageView gray, Filter filter);
std::uint64_t dhash_gray(ConstImageView gray, Filter filter);
std::uint64_t dhash_vertical_gray(ConstImageView gray, Filter filter);
std::uint64_t phash_gray(ConstImageView gray, Filter filter);
std::uint64_t phash_simple_gray(ConstImageView gray, Filter filter);

/// scipy.fftpack.dct(x) (type II, unnormalised) of n float64 values for n with no prime factor
/// over 5, to the last bit: the transform of pHash and pHash-simple at other hash sizes. Returns
/// false (and writes nothing) for other n. Allocates its plan; for tests and tools.
bool dct2_scipy(const double* x, std::int32_t n, double* out);
/// imagehash whash (haar, hash_size 8, remove_max_haar_ll) of a one-channel image; the
/// wavelet scale comes from the image's size as in imagehash. Allocates scale^2 doubles.
std::uint64_t whash_gray(ConstImageView gray, Filter filter);

/// imagehash colorhash (binbits 3) of an RGB (3 or 4 channels, alpha ignored) or grey image:
/// Pillow's convert("L") and convert("HSV") arithmetic. 42 bits, most significant first.
std::uint64_t colorhash_rgb(ConstImageView img);

/// How PDQ turns 3 or 4 channels into luma (1 channel: luma = value in both). The two
/// oracles differ by one float32 ulp on about a third of RGB triples, which flips bits of
/// flat or tiny images, so each mode names its own.
enum class PdqLuma : std::uint8_t {
  kReference = 0,  ///< the C++ reference: float32 (0.299f R + 0.587f G) + 0.114f B
  kPdqhash = 1,    ///< pdqhash.compute (numpy): float64 R*0.299 + G*0.587 + B*0.114, then float32
};

/// PDQ of an image at the size given (no squash); luma as `luma` says (kReference for the
/// reference mode, kPdqhash for full mode). hashes[0] gets the hash; hashes[1..7] the dihedral
/// variants (rot90, rot180, rot270, flipx, flipy, flip+1, flip-1) when dihedral. Images under
/// 5 px on a side give all-zero hashes and quality 0; a 64x64 image skips the blur (as the
/// reference's pdqHash256FromFloatLuma). scratch: pdq_scratch_floats(w, h) floats.
std::size_t pdq_scratch_floats(std::int32_t width, std::int32_t height);
void pdq_hash(ConstImageView img, bool dihedral, float* scratch, PdqHash* hashes, std::int32_t* quality,
              PdqLuma luma = PdqLuma::kReference);

/// The PDQ reference hasher's input rule: an image over 512 px on either side is resampled to
/// exactly 512x512 by nearest neighbour (source index floor(x * W / 512)); returns false (and
/// writes nothing) when the image needs no squash. dst: 512x512, src's channel count.
bool pdq_reference_squash(ConstImageView src, ImageView dst);

// ---- whole records ----

// Each takes an optional Workspace (mmcore/workspace.h) for its scratch: a caller hashing many
// records on one thread passes the same one to each, so that large images reuse their buffers;
// without one the call allocates its own. The bits are the same either way.

/// Hashes an already decoded image (treated as Pillow's RGB / L image would be).
Status hash_image(ConstImageView img, const HashRequest& request, HashRecord* out, ErrorText* error,
                  Workspace* workspace = nullptr);

/// Decodes (once, at the size the request needs) and hashes encoded image bytes.
Status hash_bytes(const std::uint8_t* data, std::size_t size, const HashRequest& request, HashRecord* out,
                  ErrorText* error, Workspace* workspace = nullptr);

/// hash_bytes, plus the thumbnail of the same bytes into thumb_out (thumbnail_into's pixels for
/// thumb_info, which thumbnail_info gave; its status and message in thumb_status / thumb_error).
/// When the hash decode holds what the thumbnail would decode (thumbnail_can_reuse: full size,
/// same pixel format, a 16-bit grey PNG only with the same pillow_i16; exact modes then decode RGB
/// for JPEG, WebP and GIF even for grey-only kinds, whose bits
/// do not change), the thumbnail is made from those pixels (oriented, resized, cropped) instead
/// of a second decode: the same pixels and status either way.
Status hash_bytes_with_thumbnail(const std::uint8_t* data, std::size_t size, const HashRequest& request,
                                 HashRecord* out, ErrorText* error, const ThumbnailOptions& thumb,
                                 const ThumbnailInfo& thumb_info, ImageView thumb_out, Status* thumb_status,
                                 ErrorText* thumb_error, Workspace* workspace = nullptr);

}  // namespace mmcore
