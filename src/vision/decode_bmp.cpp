// BMP decoding, following PIL 9.4's BmpImagePlugin: BITMAPCOREHEADER (12) and
// BITMAPINFOHEADER/V4/V5 (40, 64, 108, 124); 1/4/8-bit palettes, 16-bit 5-5-5
// and 5-6-5, 24-bit BGR, 32-bit BGRX and the bitfield layouts PIL accepts;
// RLE8 and RLE4 (decoded exactly like PIL's BmpRleDecoder, quirks included);
// bottom-up and top-down rows. Alpha is dropped. Palette indices past the
// palette map to PIL's default grey ramp (i, i, i).
//
// PIL's quirks are reproduced too: a palette that is exactly the identity grey
// ramp (entry i = (i, i, i)) makes PIL read the pixels as mode "L", one byte
// per pixel whatever the bit depth, and a 2-entry black/white palette makes it
// read them as mode "1", one bit per pixel. For 8-bit (and 1-bit) files that
// is the palette lookup; for other depths it is what PIL returns (or the
// error it raises).
#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#include "vision/decoders.h"

namespace mmfuse::detail {

namespace {

constexpr uint32_t kRaw = 0, kRle8 = 1, kRle4 = 2, kBitfields = 3;

class Reader {
 public:
  Reader(const uint8_t* data, size_t size, const std::string& name)
      : data_(data), size_(size), name_(name) {}

  uint32_t u16(size_t off) const {
    need(off, 2);
    return uint32_t{data_[off]} | (uint32_t{data_[off + 1]} << 8);
  }
  uint32_t u32(size_t off) const {
    need(off, 4);
    return uint32_t{data_[off]} | (uint32_t{data_[off + 1]} << 8) |
           (uint32_t{data_[off + 2]} << 16) | (uint32_t{data_[off + 3]} << 24);
  }
  void need(size_t off, size_t n) const {
    if (off > size_ || n > size_ - off)
      image_error(ErrorKind::bad_input, name_, "corrupt BMP: image file is truncated");
  }
  const uint8_t* at(size_t off) const { return data_ + off; }
  size_t size() const { return size_; }

 private:
  const uint8_t* data_;
  size_t size_;
  const std::string& name_;
};

// Pixel layout of non-palette rows.
enum class Layout { palette, bgr15, bgr16, bgr24, bytes32 };

// PIL's BmpRleDecoder, reproduced step by step: returns the index bytes in file
// row order (at least width*height of them) or throws.
std::vector<uint8_t> decode_rle(const Reader& r, size_t pos, bool rle4, size_t width, size_t height,
                                const std::string& name) {
  const size_t total = width * height;
  std::vector<uint8_t> data;
  data.reserve(total);
  size_t x = 0;
  const size_t end = r.size();
  auto read_byte = [&](int& out) {
    if (pos >= end) return false;
    out = *r.at(pos++);
    return true;
  };
  while (data.size() < total) {
    int pixels = 0, byte = 0;
    const bool got_pixels = read_byte(pixels);
    const bool got_byte = got_pixels && read_byte(byte);
    if (!got_pixels || !got_byte) break;
    if (pixels != 0) {
      // Encoded mode: `pixels` copies of `byte` (RLE4: alternating nibbles).
      size_t n = static_cast<size_t>(pixels);
      if (x + n > width) n = x < width ? width - x : 0;
      for (size_t i = 0; i < n; ++i) {
        data.push_back(static_cast<uint8_t>(rle4 ? (i % 2 == 0 ? byte >> 4 : byte & 0x0F) : byte));
      }
      x += n;
    } else if (byte == 0) {  // end of line
      while (data.size() % width != 0) data.push_back(0);
      x = 0;
    } else if (byte == 1) {  // end of bitmap
      break;
    } else if (byte == 2) {  // delta; PIL reads two bytes, then the offsets from the next two
      if (end - pos < 2) break;
      pos += 2;
      if (end - pos < 2)
        image_error(ErrorKind::bad_input, name, "corrupt BMP: truncated RLE delta");
      const size_t right = *r.at(pos), up = *r.at(pos + 1);
      pos += 2;
      data.insert(data.end(), right + up * width, 0);
      x = data.size() % width;
    } else {  // absolute mode
      const size_t count = rle4 ? static_cast<size_t>(byte) / 2 : static_cast<size_t>(byte);
      const size_t got = std::min(count, end - pos);
      for (size_t i = 0; i < got; ++i) {
        const uint8_t b = *r.at(pos + i);
        if (rle4) {
          data.push_back(b >> 4);
          data.push_back(b & 0x0F);
        } else {
          data.push_back(b);
        }
      }
      pos += got;
      if (got < count) break;
      x += static_cast<size_t>(byte);
      if (pos % 2 != 0) ++pos;  // word alignment, on the absolute file offset
    }
  }
  if (data.size() < total)
    image_error(ErrorKind::bad_input, name, "corrupt BMP: not enough image data");
  return data;
}

}  // namespace

Image decode_bmp(const uint8_t* data, size_t size, const std::string& name,
                 const DecodeLimits& limits) {
  const Reader r(data, size, name);
  auto bad = [&](const std::string& what) {
    image_error(ErrorKind::bad_input, name, "corrupt BMP: " + what);
  };
  auto unsupported = [&](const std::string& what) {
    image_error(ErrorKind::unsupported, name, "unsupported BMP: " + what);
  };

  size_t offset = r.u32(10);
  const uint32_t header_size = r.u32(14);
  size_t pos = 18;  // read position after the header-size field
  int64_t width = 0, height = 0;
  uint32_t bits = 0, compression = kRaw, colors = 0;
  size_t palette_padding = 4;
  bool top_down = false;
  uint32_t mask[4] = {0, 0, 0, 0};
  if (header_size == 12) {
    width = r.u16(18);
    height = r.u16(20);
    bits = r.u16(24);
    palette_padding = 3;
    pos = 26;
  } else if (header_size == 40 || header_size == 64 || header_size == 108 || header_size == 124) {
    r.need(14, header_size);
    const uint32_t raw_height = r.u32(22);
    top_down = *r.at(25) == 0xFF;
    width = r.u32(18);
    // PIL: a top byte of 0xFF marks a negative (top-down) height.
    height = top_down ? (int64_t{1} << 32) - int64_t{raw_height} : int64_t{raw_height};
    bits = r.u16(28);
    compression = r.u32(30);
    colors = r.u32(46);
    pos = 14 + header_size;
    if (compression == kBitfields) {
      if (header_size >= 56) {
        for (int i = 0; i < 4; ++i) mask[i] = r.u32(54 + 4 * i);
      } else {
        for (int i = 0; i < 3; ++i) mask[i] = r.u32(pos + 4 * i);
        pos += 12;
      }
    }
  } else if (header_size == 16 || header_size == 52 || header_size == 56) {
    unsupported("header size " + std::to_string(header_size));
  } else {
    bad("invalid header size " + std::to_string(header_size));
  }

  const uint64_t ncolors = colors != 0 ? colors : (bits < 32 ? (uint64_t{1} << bits) : 0);
  if (offset == 14 + header_size && bits <= 8) offset += 4 * ncolors;

  Layout layout = Layout::palette;
  std::array<int, 3> byte_of = {2, 1, 0};  // 32-bit: byte offsets of R, G, B
  switch (bits) {
    case 1:
    case 4:
    case 8: layout = Layout::palette; break;
    case 16: layout = Layout::bgr15; break;
    case 24: layout = Layout::bgr24; break;
    case 32: layout = Layout::bytes32; break;
    default: unsupported("pixel depth " + std::to_string(bits));
  }

  if (compression == kBitfields) {
    const uint32_t r_ = mask[0], g_ = mask[1], b_ = mask[2], a_ = mask[3];
    auto is = [&](uint32_t rm, uint32_t gm, uint32_t bm) {
      return r_ == rm && g_ == gm && b_ == bm;
    };
    bool ok = false;
    if (bits == 32) {
      ok = true;
      if (is(0xFF0000, 0xFF00, 0xFF) && (a_ == 0 || a_ == 0xFF000000)) {
        byte_of = {2, 1, 0};  // BGRX / BGRA
      } else if (is(0xFF000000, 0xFF0000, 0xFF00) && (a_ == 0 || a_ == 0xFF)) {
        byte_of = {3, 2, 1};  // XBGR / ABGR
      } else if (is(0xFF, 0xFF00, 0xFF0000) && a_ == 0xFF000000) {
        byte_of = {0, 1, 2};  // RGBA
      } else if (is(0, 0, 0) && a_ == 0) {
        byte_of = {2, 1, 0};  // PIL reads an all-zero mask set as BGRA
      } else {
        ok = false;
      }
    } else if (bits == 24) {
      ok = is(0xFF0000, 0xFF00, 0xFF);
    } else if (bits == 16) {
      if (is(0xF800, 0x7E0, 0x1F)) {
        layout = Layout::bgr16;
        ok = true;
      } else if (is(0x7C00, 0x3E0, 0x1F)) {
        ok = true;
      }
    }
    if (!ok) unsupported("bitfields layout");
  } else if (compression == kRle8 || compression == kRle4) {
    if (layout != Layout::palette)
      unsupported("RLE compression with " + std::to_string(bits) + " bits per pixel");
  } else if (compression != kRaw) {
    unsupported("compression " + std::to_string(compression));
  }

  // Palette: grey ramp, overwritten by the file's entries (BGR or BGRX).
  std::array<uint8_t, 256 * 3> palette{};
  for (int i = 0; i < 256; ++i) {
    palette[3 * i] = palette[3 * i + 1] = palette[3 * i + 2] = static_cast<uint8_t>(i);
  }
  // PIL's mode for palette files: "P", or "L" / "1" for grey palettes.
  enum class PaletteMode { p, l, one } pmode = PaletteMode::p;
  if (layout == Layout::palette) {
    if (ncolors == 0 || ncolors > 65536) unsupported("palette size " + std::to_string(colors));
    // PIL reads up to `colors` entries and keeps what the file holds (a short
    // read is not an error: the pixel data then decides).
    const size_t avail = pos < r.size() ? r.size() - pos : 0;
    const size_t bytes = std::min<uint64_t>(palette_padding * ncolors, avail);
    bool grey = bytes == palette_padding * ncolors;
    for (size_t i = 0; grey && i < ncolors; ++i) {
      const uint8_t* e = r.at(pos + palette_padding * i);
      const uint8_t v = ncolors == 2 ? static_cast<uint8_t>(i * 255) : static_cast<uint8_t>(i);
      grey = e[0] == v && e[1] == v && e[2] == v;
    }
    if (grey) {
      pmode = ncolors == 2 ? PaletteMode::one : PaletteMode::l;
    } else if (static_cast<double>(bytes) / static_cast<double>(palette_padding) > 256.0) {
      bad("invalid palette size (" + std::to_string(ncolors) + " entries)");
    }
    const size_t n = std::min<size_t>(bytes / palette_padding, 256);
    for (size_t i = 0; i < n; ++i) {
      const uint8_t* e = r.at(pos + palette_padding * i);
      palette[3 * i] = e[2];
      palette[3 * i + 1] = e[1];
      palette[3 * i + 2] = e[0];
    }
    pos += bytes;
  }

  check_image_size(width, height, name, limits);
  if (offset == 0) offset = pos;
  const size_t w = static_cast<size_t>(width), h = static_cast<size_t>(height);

  if (compression == kRle8 || compression == kRle4) {
    // PIL unpacks the decoded bytes as "P" (or "L"): no unpacker for mode "1".
    if (pmode == PaletteMode::one) bad("RLE data with a black/white palette");
    const std::vector<uint8_t> idx = decode_rle(r, offset, compression == kRle4, w, h, name);
    Image img = make_image(static_cast<int>(width), static_cast<int>(height));
    for (size_t fy = 0; fy < h; ++fy) {
      const size_t y = top_down ? fy : h - 1 - fy;
      uint8_t* dst = img.rgb.data() + y * w * 3;
      for (size_t x = 0; x < w; ++x) std::memcpy(dst + 3 * x, &palette[3 * idx[fy * w + x]], 3);
    }
    return img;
  }

  // Pixel bits as PIL's raw mode reads them.
  size_t unpack_bits = bits;
  if (pmode == PaletteMode::l) unpack_bits = 8;
  if (pmode == PaletteMode::one) unpack_bits = 1;
  const size_t stride = ((w * bits + 31) >> 3) & ~size_t{3};
  const size_t row_bytes = (w * unpack_bits + 7) / 8;
  if (row_bytes > stride) bad("rows too short for the pixel format");
  r.need(offset, stride * (h - 1) + row_bytes);
  Image img = make_image(static_cast<int>(width), static_cast<int>(height));
  for (size_t fy = 0; fy < h; ++fy) {
    const uint8_t* src = r.at(offset + fy * stride);
    const size_t y = top_down ? fy : h - 1 - fy;
    uint8_t* dst = img.rgb.data() + y * w * 3;
    if (pmode == PaletteMode::l) {
      for (size_t x = 0; x < w; ++x) dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = src[x];
      continue;
    }
    if (pmode == PaletteMode::one) {
      for (size_t x = 0; x < w; ++x) {
        const uint8_t v = ((src[x / 8] >> (7 - x % 8)) & 1) ? 255 : 0;
        dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = v;
      }
      continue;
    }
    switch (layout) {
      case Layout::palette: {
        const unsigned per_byte = 8 / bits, mask_bits = (1u << bits) - 1;
        for (size_t x = 0; x < w; ++x) {
          const unsigned shift = 8 - bits * (1 + static_cast<unsigned>(x % per_byte));
          const unsigned index = (src[x / per_byte] >> shift) & mask_bits;
          std::memcpy(dst + 3 * x, &palette[3 * index], 3);
        }
        break;
      }
      case Layout::bgr15:
      case Layout::bgr16: {
        const bool g6 = layout == Layout::bgr16;
        for (size_t x = 0; x < w; ++x) {
          const unsigned p = src[2 * x] | (unsigned{src[2 * x + 1]} << 8);
          const unsigned b = p & 31;
          const unsigned g = g6 ? (p >> 5) & 63 : (p >> 5) & 31;
          const unsigned rr = g6 ? (p >> 11) & 31 : (p >> 10) & 31;
          dst[3 * x] = static_cast<uint8_t>(rr * 255 / 31);
          dst[3 * x + 1] = static_cast<uint8_t>(g6 ? g * 255 / 63 : g * 255 / 31);
          dst[3 * x + 2] = static_cast<uint8_t>(b * 255 / 31);
        }
        break;
      }
      case Layout::bgr24:
        for (size_t x = 0; x < w; ++x) {
          dst[3 * x] = src[3 * x + 2];
          dst[3 * x + 1] = src[3 * x + 1];
          dst[3 * x + 2] = src[3 * x];
        }
        break;
      case Layout::bytes32:
        for (size_t x = 0; x < w; ++x) {
          for (int c = 0; c < 3; ++c) dst[3 * x + c] = src[4 * x + byte_of[c]];
        }
        break;
    }
  }
  return img;
}

}  // namespace mmfuse::detail
