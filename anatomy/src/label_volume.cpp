// Label volume I/O through ITK. ITK types never leave this file (and image_ops.cpp, the subject
// builder's filters; itk_bridge.hpp is shared by both).

#include "myotwin/anatomy/label_volume.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <mutex>
#include <string>
#include <vector>

// ITK 5.2 as Debian ships it bundles Eigen 3.3 (itkeigen/) and its IO headers include it; in a
// translation unit that also sees the project's Eigen 3.4 the two clash. Point ITK at the
// project's Eigen instead (ITK uses only its header-only Eigenvalues module here).
#ifndef ITK_USE_SYSTEM_EIGEN
#define ITK_USE_SYSTEM_EIGEN
#endif
#include <itkImage.h>
#include <itkImageFileReader.h>
#include <itkImageFileWriter.h>
#include <itkImageIOBase.h>
#include <itkImageIOFactory.h>
#include <itkMetaImageIO.h>
#include <itkMetaImageIOFactory.h>
#include <itkNiftiImageIO.h>
#include <itkNiftiImageIOFactory.h>
#include <itkNrrdImageIO.h>
#include <itkNrrdImageIOFactory.h>
#include <itkOutputWindow.h>
#include <itk_zlib.h>

#include "itk_bridge.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/files.hpp"
#include "myotwin/core/log.hpp"
#include "myotwin/core/resources.hpp"
#include "myotwin/core/units.hpp"

namespace myotwin::anatomy {

namespace fs = std::filesystem;

namespace {

/// Formats of label volumes, by the (lower-case) end of the file name.
enum class Format { nifti, nifti_gz, nrrd, nhdr, mha, mhd, unknown };

constexpr const char* supported_extensions = ".nii, .nii.gz, .nrrd, .nhdr, .mha or .mhd";

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() > suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

Format format_of(const fs::path& path) {
  const std::string name = lower(path.filename().string());
  if (ends_with(name, ".nii.gz"))
    return Format::nifti_gz;
  if (ends_with(name, ".nii"))
    return Format::nifti;
  if (ends_with(name, ".nrrd"))
    return Format::nrrd;
  if (ends_with(name, ".nhdr"))
    return Format::nhdr;
  if (ends_with(name, ".mha"))
    return Format::mha;
  if (ends_with(name, ".mhd"))
    return Format::mhd;
  return Format::unknown;
}

/// The extension as the user wrote it, for messages ("(none)" if there is none).
std::string extension_for_message(const fs::path& path) {
  const std::string name = path.filename().string();
  if (ends_with(lower(name), ".gz") && fs::path(path.stem()).has_extension())
    return path.stem().extension().string() + path.extension().string();
  return path.has_extension() ? path.extension().string() : std::string("(none)");
}

/// Forwards ITK's warnings (multi-line, with source locations) to the myotwin log as one line.
class LogOutputWindow : public itk::OutputWindow {
public:
  using Self = LogOutputWindow;
  using Pointer = itk::SmartPointer<Self>;
  static Pointer New() {
    Pointer p = new Self;
    p->UnRegister();
    return p;
  }
  void DisplayText(const char* text) override { log_warning("ITK: ", flatten(text)); }
  void DisplayDebugText(const char* text) override { log_debug("ITK: ", flatten(text)); }

private:
  static std::string flatten(const char* text) {
    std::string s = text == nullptr ? std::string() : std::string(text);
    // ITK prefixes "WARNING: In /path/file.cxx, line N\nClass (0x...): message"; keep the message.
    const auto object = s.find("): ");
    if (s.rfind("WARNING: In ", 0) == 0 && object != std::string::npos)
      s = s.substr(object + 3);
    std::replace(s.begin(), s.end(), '\n', ' ');
    while (!s.empty() && s.back() == ' ')
      s.pop_back();
    return s;
  }
};

/// Registers the NIfTI, NRRD and MetaImage readers and writers with ITK once (instead of relying
/// on ITK_USE_FILE's generated registration), and routes ITK's messages to the log.
void register_itk_io() {
  static std::once_flag once;
  std::call_once(once, [] {
    itk::NiftiImageIOFactory::RegisterOneFactory();
    itk::NrrdImageIOFactory::RegisterOneFactory();
    itk::MetaImageIOFactory::RegisterOneFactory();
    itk::OutputWindow::SetInstance(LogOutputWindow::New());
  });
}

/// ITK's description of an exception on one line, without ITK's "ITK ERROR: Class(0x...): "
/// prefix, shortened.
std::string describe(const itk::ExceptionObject& e) {
  std::string s = e.GetDescription() != nullptr ? e.GetDescription() : "unknown ITK error";
  if (s.rfind("ITK ERROR: ", 0) == 0) {
    const auto object = s.find("): ");
    if (object != std::string::npos)
      s = s.substr(object + 3);
  }
  std::string out;
  for (const char c : s) {
    const char d = (c == '\n' || c == '\r' || c == '\t') ? ' ' : c;
    if (d == ' ' && (out.empty() || out.back() == ' '))
      continue;
    out += d;
  }
  while (!out.empty() && out.back() == ' ')
    out.pop_back();
  // NRRD (teem) chains its messages "[nrrd] caller: ... [nrrd] callee: detail"; keep the detail.
  const auto last = out.rfind("[nrrd] ");
  if (last != std::string::npos && last + 7 < out.size()) {
    out = out.substr(last + 7);
    const auto colon = out.find(": ");
    if (colon != std::string::npos && out.find(' ') > colon)
      out = out.substr(colon + 2);
  }
  constexpr std::size_t max_length = 200;
  if (out.size() > max_length)
    out = out.substr(0, max_length - 3) + "...";
  return out;
}

bool is_integer_component(itk::IOComponentEnum c) {
  using C = itk::IOComponentEnum;
  switch (c) {
  case C::UCHAR:
  case C::CHAR:
  case C::USHORT:
  case C::SHORT:
  case C::UINT:
  case C::INT:
  case C::ULONG:
  case C::LONG:
  case C::ULONGLONG:
  case C::LONGLONG:
    return true;
  default:
    return false;
  }
}

/// niftilib and vnl abort the process on a header whose voxel spacing or orientation is not a
/// finite number, so check those fields before ITK reads the header: pixdim[1..3] always, the
/// quaternion and offset when qform_code > 0, the affine rows when sform_code > 0.
/// \throws BadInput naming the field and its value.
void check_nifti_geometry(const fs::path& path, Format format) {
  std::array<unsigned char, 540> header{};
  std::size_t n_read = 0;
  if (format == Format::nifti_gz) {
    gzFile f = gzopen(path.c_str(), "rb");
    if (f == nullptr)
      return;
    const int n = gzread(f, header.data(), static_cast<unsigned>(header.size()));
    gzclose(f);
    n_read = n > 0 ? static_cast<std::size_t>(n) : 0;
  } else {
    std::ifstream in(path, std::ios::binary);
    in.read(reinterpret_cast<char*>(header.data()), static_cast<std::streamsize>(header.size()));
    n_read = static_cast<std::size_t>(in.gcount());
  }
  if (n_read < 348)
    return; // too short for a header: ITK reports it
  // The version and byte order as niftilib decides them, not by sizeof_hdr alone: it reads a
  // header whose sizeof_hdr is neither 348 nor 540 in either order (found by the fuzz target
  // label_volume: such a header skipped these checks and vnl aborted on a NaN affine). NIfTI-2
  // by its magic or size, else NIfTI-1 / Analyze; the byte order by dim[0] (1 to 7 as stored:
  // native), else by sizeof_hdr.
  std::int32_t sizeof_hdr = 0;
  std::memcpy(&sizeof_hdr, header.data(), 4);
  const auto sizeof_swapped =
      static_cast<std::int32_t>(__builtin_bswap32(static_cast<std::uint32_t>(sizeof_hdr)));
  const bool v2 = sizeof_hdr == 540 || sizeof_swapped == 540 ||
                  std::memcmp(header.data() + 4, "n+2", 3) == 0 ||
                  std::memcmp(header.data() + 4, "ni2", 3) == 0;
  if (v2 && n_read < 540)
    return; // too short for a NIfTI-2 header: ITK reports it
  std::int64_t dim0 = 0, dim0_swapped = 0;
  if (v2) {
    std::uint64_t bits = 0;
    std::memcpy(&bits, header.data() + 16, 8);
    dim0 = static_cast<std::int64_t>(bits);
    dim0_swapped = static_cast<std::int64_t>(__builtin_bswap64(bits));
  } else {
    std::uint16_t bits = 0;
    std::memcpy(&bits, header.data() + 40, 2);
    dim0 = static_cast<std::int16_t>(bits);
    dim0_swapped = static_cast<std::int16_t>(__builtin_bswap16(bits));
  }
  const bool swap = dim0 >= 1 && dim0 <= 7 ? false
                    : dim0_swapped >= 1 && dim0_swapped <= 7
                        ? true
                        : sizeof_hdr != 348 && sizeof_hdr != 540;
  const auto value = [&](std::size_t at) -> double { // float32 (NIfTI-1) or float64 (NIfTI-2)
    if (v2) {
      std::uint64_t bits = 0;
      std::memcpy(&bits, header.data() + at, 8);
      if (swap)
        bits = __builtin_bswap64(bits);
      double d = 0.0;
      std::memcpy(&d, &bits, 8);
      return d;
    }
    std::uint32_t bits = 0;
    std::memcpy(&bits, header.data() + at, 4);
    if (swap)
      bits = __builtin_bswap32(bits);
    float f = 0.0f;
    std::memcpy(&f, &bits, 4);
    return f;
  };
  const auto code = [&](std::size_t at) -> int { // int16 (NIfTI-1) or int32 (NIfTI-2)
    if (v2) {
      std::uint32_t bits = 0;
      std::memcpy(&bits, header.data() + at, 4);
      return static_cast<std::int32_t>(swap ? __builtin_bswap32(bits) : bits);
    }
    std::uint16_t bits = 0;
    std::memcpy(&bits, header.data() + at, 2);
    return static_cast<std::int16_t>(swap ? __builtin_bswap16(bits) : bits);
  };
  const std::size_t w = v2 ? 8 : 4; // bytes per field
  const std::size_t pixdim = v2 ? 104 : 76, qform_code = v2 ? 344 : 252,
                    sform_code = v2 ? 348 : 254, quatern = v2 ? 352 : 256, srow = v2 ? 400 : 280;
  const auto check = [&](std::size_t at, const std::string& field) {
    const double v = value(at);
    if (!std::isfinite(v))
      throw BadInput(path.string() + ": header field " + field + " is " + format_number(v) +
                     "; expected a finite number (the voxel spacing and orientation)");
  };
  for (std::size_t d = 1; d <= 3; ++d)
    check(pixdim + d * w, "pixdim[" + std::to_string(d) + "] (voxel spacing)");
  if (code(qform_code) > 0) {
    const char* names[] = {"quatern_b", "quatern_c", "quatern_d",
                           "qoffset_x", "qoffset_y", "qoffset_z"};
    for (std::size_t q = 0; q < 6; ++q)
      check(quatern + q * w, names[q]);
  }
  if (code(sform_code) > 0)
    for (std::size_t q = 0; q < 12; ++q)
      check(srow + q * w, std::string("srow_") + "xyz"[q / 4] + "[" + std::to_string(q % 4) + "]");
}

/// MetaIO reads NDims values for each array field, and loops without end on a header whose NDims
/// is not a small positive integer (found by the fuzz target label_volume: `NDims == -10 5 3`
/// hung in MET_Read). So check NDims in the text header (the lines before ElementDataFile)
/// before ITK reads it. \throws BadInput naming the field and its value.
void check_metaimage_header(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::string line;
  const auto trim = [](const std::string& t) {
    const auto b = t.find_first_not_of(" \t\r");
    const auto e = t.find_last_not_of(" \t\r");
    return b == std::string::npos ? std::string() : t.substr(b, e - b + 1);
  };
  for (int n = 0; n < 1000 && std::getline(in, line); ++n) {
    const auto eq = line.find('=');
    if (eq == std::string::npos)
      continue;
    const std::string key = trim(line.substr(0, eq));
    if (key == "ElementDataFile")
      return;
    if (key != "NDims")
      continue;
    const std::string value = trim(line.substr(eq + 1));
    int n_dims = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n_dims);
    if (ec != std::errc() || end != value.data() + value.size() || n_dims < 1 || n_dims > 10)
      throw BadInput(path.string() + ": header field NDims = \"" + value.substr(0, 40) +
                     "\": expected an integer from 1 to 10 (3 for a volume)");
  }
}

/// niftilib fills voxel data missing from a truncated file with zeros and reports nothing, so
/// compare the bytes the file holds with what its header promises. \throws BadInput.
void check_nifti_complete(const fs::path& path, Format format, const itk::ImageIOBase& io) {
  std::array<unsigned char, 176> header{};
  std::uint64_t n_bytes = 0; // uncompressed size
  if (format == Format::nifti_gz) {
    gzFile f = gzopen(path.c_str(), "rb");
    if (f == nullptr)
      return;
    std::vector<unsigned char> chunk(1 << 16);
    for (;;) {
      const int n = gzread(f, chunk.data(), static_cast<unsigned>(chunk.size()));
      if (n <= 0)
        break;
      for (std::uint64_t q = n_bytes; q < header.size() && q < n_bytes + n; ++q)
        header[q] = chunk[q - n_bytes];
      n_bytes += static_cast<std::uint64_t>(n);
    }
    gzclose(f);
  } else {
    std::error_code ec;
    n_bytes = fs::file_size(path, ec);
    std::ifstream in(path, std::ios::binary);
    in.read(reinterpret_cast<char*>(header.data()), static_cast<std::streamsize>(header.size()));
  }
  const auto read_le = [&](std::size_t at, std::size_t size, bool swap) {
    std::array<unsigned char, 8> b{};
    for (std::size_t q = 0; q < size; ++q)
      b[q] = header[swap ? at + size - 1 - q : at + q];
    return b;
  };
  std::int32_t sizeof_hdr = 0;
  std::memcpy(&sizeof_hdr, header.data(), 4);
  std::int32_t swapped = 0;
  const auto sw = read_le(0, 4, true);
  std::memcpy(&swapped, sw.data(), 4);
  double vox_offset = -1.0;
  if (sizeof_hdr == 348 || swapped == 348) { // NIfTI-1: float32 vox_offset at byte 108
    float v = 0.0f;
    const auto b = read_le(108, 4, sizeof_hdr != 348);
    std::memcpy(&v, b.data(), 4);
    vox_offset = std::max<double>(v, 352.0);
  } else if (sizeof_hdr == 540 || swapped == 540) { // NIfTI-2: int64 vox_offset at byte 168
    std::int64_t v = 0;
    const auto b = read_le(168, 8, sizeof_hdr != 540);
    std::memcpy(&v, b.data(), 8);
    vox_offset = static_cast<double>(std::max<std::int64_t>(v, 544));
  }
  if (vox_offset < 0.0)
    return; // not a header this check understands; ITK has accepted it
  // Compared as doubles: a header's vox_offset may be NaN or beyond any integer type (found by
  // the fuzz target label_volume; converting it was undefined behaviour).
  const auto data_bytes = static_cast<double>(io.GetImageSizeInBytes());
  if (!std::isfinite(vox_offset) || static_cast<double>(n_bytes) < vox_offset + data_bytes) {
    const double present =
        std::isfinite(vox_offset) ? std::max(0.0, static_cast<double>(n_bytes) - vox_offset) : 0.0;
    throw BadInput(path.string() + ": corrupt or truncated file: the header promises " +
                   format_number(data_bytes) + " bytes of voxel data from byte " +
                   format_number(vox_offset) + ", but the file holds only " +
                   format_number(present) +
                   (format == Format::nifti_gz ? " (after decompression)" : ""));
  }
}

/// MetaIO, too, zero-fills data missing from a truncated file (it only prints a note), so compare
/// the data bytes present with what the header promises: CompressedDataSize for compressed data,
/// the image size otherwise. Lists and patterns of data files are not checked. \throws BadInput.
void check_metaimage_complete(const fs::path& path, const itk::ImageIOBase& io) {
  std::ifstream in(path, std::ios::binary);
  std::string line;
  bool compressed = false;
  std::uint64_t compressed_size = 0;
  std::string data_file;
  std::uint64_t header_end = 0;
  while (std::getline(in, line)) {
    header_end += line.size() + 1;
    const auto eq = line.find('=');
    if (eq == std::string::npos)
      continue;
    auto trim = [](std::string t) {
      const auto a = t.find_first_not_of(" \t\r");
      const auto b = t.find_last_not_of(" \t\r");
      return a == std::string::npos ? std::string() : t.substr(a, b - a + 1);
    };
    const std::string key = trim(line.substr(0, eq));
    const std::string value = trim(line.substr(eq + 1));
    if (key == "CompressedData")
      compressed = lower(value) == "true";
    else if (key == "CompressedDataSize")
      compressed_size = std::strtoull(value.c_str(), nullptr, 10);
    else if (key == "ElementDataFile") {
      data_file = value;
      break; // the last header field
    }
  }
  if (data_file.empty() || data_file.find(' ') != std::string::npos ||
      data_file.find('%') != std::string::npos || data_file == "LIST")
    return;
  std::error_code ec;
  std::uint64_t n_bytes = 0;
  fs::path data_path = path;
  if (data_file == "LOCAL") {
    const std::uint64_t size = fs::file_size(path, ec);
    n_bytes = size > header_end ? size - header_end : 0;
  } else {
    data_path = path.parent_path() / data_file;
    if (!fs::exists(data_path, ec)) {
      throw IoError(path.string() + ": its data file " + data_path.string() + " does not exist");
    }
    n_bytes = fs::file_size(data_path, ec);
  }
  if (ec)
    return;
  const std::uint64_t needed =
      compressed ? compressed_size : static_cast<std::uint64_t>(io.GetImageSizeInBytes());
  if (n_bytes < needed) {
    throw BadInput(data_path.string() + ": corrupt or truncated file: the header promises " +
                   std::to_string(needed) + (compressed ? " compressed" : "") +
                   " bytes of voxel data, but the file holds only " + std::to_string(n_bytes));
  }
}

/// teem allocates the whole image before it finds the data short, so compare the data bytes
/// present with what the header promises: the raw size for `raw`, twice it for `hex`, one byte
/// per voxel for text, and 1/1032 of it (deflate's largest ratio) for gzip. bzip2 and lists of
/// data files are not checked. \throws BadInput.
void check_nrrd_complete(const fs::path& path, const itk::ImageIOBase& io) {
  std::ifstream in(path, std::ios::binary);
  std::string line, encoding = "raw", data_file;
  std::uint64_t header_end = 0;
  while (std::getline(in, line)) {
    header_end += line.size() + 1;
    if (!line.empty() && line.back() == '\r')
      line.pop_back();
    if (line.empty())
      break; // the blank line that ends the header
    const auto colon = line.find(':');
    if (line[0] == '#' || colon == std::string::npos)
      continue;
    const std::string key = lower(line.substr(0, colon));
    std::string value = line.substr(colon + 1);
    if (!value.empty() && value[0] == '=')
      continue; // a key/value pair, not a field
    value.erase(0, value.find_first_not_of(" \t"));
    if (key == "spacings" || key == "space directions" || key == "space origin") {
      const std::string v = lower(value);
      if (v.find("nan") != std::string::npos || v.find("inf") != std::string::npos)
        throw BadInput(path.string() + ": header field " + key + " = \"" + value +
                       "\": expected finite voxel " +
                       (key == "spacings" ? "spacings" : "geometry") +
                       " (a label volume's "
                       "three axes are all spatial)");
    }
    if (key == "encoding")
      encoding = lower(value);
    else if (key == "data file" || key == "datafile")
      data_file = value;
  }
  if (data_file.find(' ') != std::string::npos || data_file.find('%') != std::string::npos ||
      lower(data_file).rfind("list", 0) == 0)
    return;
  std::error_code ec;
  fs::path data_path = path;
  std::uint64_t n_bytes = 0;
  if (data_file.empty()) {
    const std::uint64_t size = fs::file_size(path, ec);
    n_bytes = size > header_end ? size - header_end : 0;
  } else {
    data_path =
        fs::path(data_file).is_absolute() ? fs::path(data_file) : path.parent_path() / data_file;
    if (!fs::exists(data_path, ec))
      throw IoError(path.string() + ": its data file " + data_path.string() + " does not exist");
    n_bytes = fs::file_size(data_path, ec);
  }
  if (ec)
    return;
  const double image_bytes = static_cast<double>(io.GetImageSizeInBytes());
  double needed = image_bytes;
  std::string what = "bytes of voxel data";
  if (encoding == "hex") {
    needed = 2.0 * image_bytes;
    what = "hex digits of voxel data";
  } else if (encoding == "text" || encoding == "txt" || encoding == "ascii") {
    needed = image_bytes / static_cast<double>(io.GetComponentSize());
    what = "characters of voxel text (one per voxel at least)";
  } else if (encoding == "gzip" || encoding == "gz") {
    needed = image_bytes / 1032.0;
    what = "compressed bytes (1/1032 of the " + format_number(image_bytes) +
           " bytes of voxel data it promises, deflate's largest ratio)";
  } else if (encoding != "raw") {
    return;
  }
  if (static_cast<double>(n_bytes) < std::floor(needed)) {
    throw BadInput(data_path.string() + ": corrupt or truncated file: the header promises " +
                   std::to_string(io.GetDimensions(0)) + " x " +
                   std::to_string(io.GetDimensions(1)) + " x " +
                   std::to_string(io.GetDimensions(2)) + " voxels, which need at least " +
                   format_number(std::floor(needed)) + " " + what + ", but the file holds only " +
                   std::to_string(n_bytes));
  }
}

/// True when every value of the component type fits in int32.
bool fits_int32(itk::IOComponentEnum c) {
  using C = itk::IOComponentEnum;
  return c == C::UCHAR || c == C::CHAR || c == C::USHORT || c == C::SHORT || c == C::INT;
}

std::string voxel_string(const LabelVolume& v, std::int64_t linear) {
  const std::int64_t i = linear % v.size[0];
  const std::int64_t j = (linear / v.size[0]) % v.size[1];
  const std::int64_t k = linear / (v.size[0] * v.size[1]);
  std::string s = "(";
  s.append(std::to_string(i)).append(", ").append(std::to_string(j)).append(", ");
  s.append(std::to_string(k)).append(")");
  return s;
}

/// Reads the file's voxels as a 3-D image of `Pixel` (ITK converts the stored type).
/// \throws BadInput for corrupt or truncated data.
template <class Pixel>
typename itk::Image<Pixel, 3>::Pointer read_image(const fs::path& path,
                                                  const itk::ImageIOBase::Pointer& io) {
  using Image = itk::Image<Pixel, 3>;
  const std::string name = path.string();
  auto reader = itk::ImageFileReader<Image>::New();
  reader->SetImageIO(io);
  reader->SetFileName(name);
  try {
    reader->Update();
  } catch (const itk::ExceptionObject& e) {
    throw BadInput(name + ": corrupt or truncated image data: " + describe(e));
  }
  return reader->GetOutput();
}

/// Copies the geometry of `image` (read from `name`) into `v`. \throws BadInput for a spacing
/// that is not > 0.
template <class Volume>
void copy_checked_geometry(const itk::ImageBase<3>& image, Volume& v, const std::string& name) {
  itk_bridge::copy_geometry(image, v);
  for (unsigned d = 0; d < 3; ++d) {
    if (!(v.spacing_m[d] > 0.0) || !std::isfinite(v.spacing_m[d])) {
      throw BadInput(name + ": voxel spacing along axis " + std::to_string(d) + " is " +
                     std::to_string(image.GetSpacing()[d]) + " mm; expected > 0");
    }
  }
}

/// Reads the file as a 3-D image of `Pixel` (ITK converts the stored type), copies geometry
/// (mm -> m) and labels, and rejects labels outside [0, 2^31 - 1].
template <class Pixel>
LabelVolume read_as(const fs::path& path, const itk::ImageIOBase::Pointer& io) {
  const std::string name = path.string();
  const auto image = read_image<Pixel>(path, io);

  LabelVolume v;
  copy_checked_geometry(*image, v, name);
  const std::int64_t n = v.n_voxels();
  const Pixel* buffer = image->GetBufferPointer();
  v.labels.resize(static_cast<std::size_t>(n));
  for (std::int64_t q = 0; q < n; ++q) {
    const Pixel value = buffer[q];
    if (value < 0) {
      throw BadInput(name + ": label " + std::to_string(static_cast<std::int64_t>(value)) +
                     " at voxel " + voxel_string(v, q) + "; labels must be >= 0");
    }
    if constexpr (sizeof(Pixel) > sizeof(std::int32_t)) {
      if (value > std::numeric_limits<std::int32_t>::max()) {
        throw BadInput(name + ": label " + std::to_string(static_cast<std::int64_t>(value)) +
                       " at voxel " + voxel_string(v, q) + "; labels must be <= 2147483647");
      }
    }
    v.labels[static_cast<std::size_t>(q)] = static_cast<std::int32_t>(value);
  }
  return v;
}

/// Writes `volume` as a 3-D image of `Pixel` to `tmp` (the file's extension chooses the format).
template <class Pixel>
void write_as(const fs::path& path, const fs::path& tmp, Format format, const LabelVolume& volume) {
  using Image = itk::Image<Pixel, 3>;
  const typename Image::Pointer image = itk_bridge::make_image<Pixel>(volume, volume.labels);

  itk::ImageIOBase::Pointer io;
  switch (format) {
  case Format::nifti:
  case Format::nifti_gz:
    io = itk::NiftiImageIO::New();
    break;
  case Format::nrrd:
    io = itk::NrrdImageIO::New();
    break;
  default: {
    auto meta = itk::MetaImageIO::New();
    meta->SetDoublePrecision(17); // spacing and origin survive a round trip exactly
    io = meta;
  }
  }
  auto writer = itk::ImageFileWriter<Image>::New();
  writer->SetImageIO(io);
  writer->SetFileName(tmp.string());
  writer->SetInput(image);
  writer->SetUseCompression(format == Format::nifti_gz || format == Format::nrrd ||
                            format == Format::mha);
  try {
    writer->Update();
  } catch (const itk::ExceptionObject& e) {
    throw IoError(path.string() + ": cannot be written: " + describe(e));
  }
  std::error_code ec;
  if (!fs::exists(tmp, ec)) // niftilib reports some failures only on stderr
    throw IoError(path.string() + ": cannot be written (the image writer produced no file)");
}

} // namespace

bool is_label_volume_path(const fs::path& path) {
  return format_of(path) != Format::unknown;
}

namespace {

/// Opens `path` for reading, reads and checks its header (a 3-D scalar image; integer pixels
/// when `integer_only`), and checks that NIfTI and MetaImage files hold all their voxel data.
/// `what` names the expected kind of image in messages. \throws IoError, BadInput.
itk::ImageIOBase::Pointer open_image(const fs::path& path, bool integer_only,
                                     const std::string& what) {
  const std::string name = path.string();
  if (!is_label_volume_path(path)) {
    throw BadInput(name + ": unsupported file type \"" + extension_for_message(path) +
                   "\"; expected " + what + ": " + supported_extensions);
  }
  std::error_code ec;
  if (!fs::exists(path, ec))
    throw IoError(name + ": no such file");
  if (fs::is_directory(path, ec))
    throw IoError(name + ": is a folder; expected " + what + " file");
  {
    std::ifstream probe(path, std::ios::binary);
    if (!probe)
      throw IoError(name + ": cannot be read: " + std::strerror(errno));
  }

  const Format format = format_of(path);
  if (format == Format::nifti || format == Format::nifti_gz)
    check_nifti_geometry(path, format);
  if (format == Format::mha || format == Format::mhd)
    check_metaimage_header(path);

  register_itk_io();
  itk::ImageIOBase::Pointer io =
      itk::ImageIOFactory::CreateImageIO(name.c_str(), itk::IOFileModeEnum::ReadMode);
  if (io == nullptr) {
    throw BadInput(name + ": not a readable image: the header is corrupt, truncated or not in the "
                          "format its extension says");
  }
  try {
    io->SetFileName(name);
    io->ReadImageInformation();
  } catch (const itk::ExceptionObject& e) {
    throw BadInput(name + ": corrupt or truncated header: " + describe(e));
  }

  const unsigned n_dims = io->GetNumberOfDimensions();
  bool extra_dims_are_one = true;
  for (unsigned d = 3; d < n_dims; ++d)
    extra_dims_are_one = extra_dims_are_one && io->GetDimensions(d) == 1;
  if (n_dims < 3 || !extra_dims_are_one) {
    std::string found = std::to_string(n_dims) + " dimensions";
    if (n_dims > 3) {
      found += " (size";
      for (unsigned d = 0; d < n_dims; ++d)
        found += (d == 0 ? " " : " x ") + std::to_string(io->GetDimensions(d));
      found += ")";
    }
    throw BadInput(name + ": image has " + found + "; expected a 3-D " +
                   (integer_only ? std::string("label volume") : std::string("image")));
  }
  const auto component = io->GetComponentType();
  if (io->GetNumberOfComponents() != 1 || io->GetPixelType() != itk::IOPixelEnum::SCALAR) {
    throw BadInput(name + ": image has " + std::to_string(io->GetNumberOfComponents()) +
                   " components per voxel (pixel type " +
                   itk::ImageIOBase::GetPixelTypeAsString(io->GetPixelType()) + " of " +
                   itk::ImageIOBase::GetComponentTypeAsString(component) + "); expected " +
                   (integer_only ? std::string("one integer label per voxel")
                                 : std::string("one value per voxel")));
  }
  if (integer_only && !is_integer_component(component)) {
    throw BadInput(name + ": image has pixel type " +
                   itk::ImageIOBase::GetComponentTypeAsString(component) +
                   "; expected integer labels (a segmentation, not an intensity image)");
  }
  for (unsigned d = 0; d < 3; ++d) {
    if (io->GetDimensions(d) == 0)
      throw BadInput(name + ": image has size 0 along axis " + std::to_string(d));
  }

  // Geometry ITK accepted must still be finite (spacing > 0 is checked after reading).
  for (unsigned d = 0; d < 3; ++d) {
    const double values[] = {io->GetSpacing(d), io->GetOrigin(d)};
    bool finite = std::isfinite(values[0]) && std::isfinite(values[1]);
    for (const double c : io->GetDirection(d))
      finite = finite && std::isfinite(c);
    if (!finite)
      throw BadInput(name + ": voxel spacing, origin or direction along axis " + std::to_string(d) +
                     " is not a finite number (spacing " + format_number(values[0]) +
                     " mm, origin " + format_number(values[1]) + " mm); expected finite geometry");
  }
  // The memory the labels need (ITK's buffer and ours), checked before allocating.
  {
    double n_voxels = 1.0;
    for (unsigned d = 0; d < 3; ++d)
      n_voxels *= static_cast<double>(io->GetDimensions(d));
    check_memory_estimate(
        n_voxels * (static_cast<double>(io->GetComponentSize()) + 8.0 + 4.0), "reading " + name,
        std::to_string(io->GetDimensions(0)) + " x " + std::to_string(io->GetDimensions(1)) +
            " x " + std::to_string(io->GetDimensions(2)) + " voxels in its header");
  }
  if (format == Format::nifti || format == Format::nifti_gz)
    check_nifti_complete(path, format, *io);
  if (format == Format::nrrd || format == Format::nhdr)
    check_nrrd_complete(path, *io);
  if (format == Format::mha || format == Format::mhd)
    check_metaimage_complete(path, *io);
  return io;
}

} // namespace

LabelVolume read_label_volume(const fs::path& path) {
  const itk::ImageIOBase::Pointer io = open_image(path, true, "a label volume");
  const auto component = io->GetComponentType();
  LabelVolume volume =
      fits_int32(component) ? read_as<std::int32_t>(path, io) : read_as<std::int64_t>(path, io);
  log_debug("read ", path.string(), ": ", volume.size[0], " x ", volume.size[1], " x ",
            volume.size[2], " voxels of ", itk::ImageIOBase::GetComponentTypeAsString(component));
  return volume;
}

IntensityVolume read_intensity_volume(const fs::path& path) {
  const itk::ImageIOBase::Pointer io = open_image(path, false, "an image");
  const std::string name = path.string();
  const auto image = read_image<float>(path, io);
  IntensityVolume v;
  copy_checked_geometry(*image, v, name);
  const float* buffer = image->GetBufferPointer();
  v.values.assign(buffer, buffer + v.n_voxels());
  for (std::int64_t q = 0; q < v.n_voxels(); ++q) {
    if (!std::isfinite(v.values[static_cast<std::size_t>(q)])) {
      throw BadInput(name + ": value " + std::to_string(v.values[static_cast<std::size_t>(q)]) +
                     " at voxel " + std::to_string(q) + "; expected finite values");
    }
  }
  log_debug("read ", name, ": ", v.size[0], " x ", v.size[1], " x ", v.size[2], " voxels of ",
            itk::ImageIOBase::GetComponentTypeAsString(io->GetComponentType()));
  return v;
}

void write_label_volume(const fs::path& path, const LabelVolume& volume) {
  const std::string name = path.string();
  const Format format = format_of(path);
  if (format == Format::unknown || format == Format::nhdr || format == Format::mhd) {
    throw BadInput(name + ": cannot write file type \"" + extension_for_message(path) +
                   "\"; expected .nii.gz, .nii, .nrrd or .mha (single-file formats)");
  }
  for (unsigned d = 0; d < 3; ++d) {
    if (volume.size[d] <= 0)
      throw BadInput(name + ": label volume has size " + std::to_string(volume.size[d]) +
                     " along axis " + std::to_string(d) + "; expected > 0");
    if (!(volume.spacing_m[d] > 0.0) || !std::isfinite(volume.spacing_m[d]))
      throw BadInput(name + ": voxel spacing along axis " + std::to_string(d) + " is " +
                     std::to_string(volume.spacing_m[d]) + " m; expected > 0");
  }
  if (static_cast<std::int64_t>(volume.labels.size()) != volume.n_voxels()) {
    throw BadInput(name + ": label volume holds " + std::to_string(volume.labels.size()) +
                   " labels for " + std::to_string(volume.n_voxels()) + " voxels");
  }
  // Not a structured binding: clang 14 (the fuzz build) cannot capture one in the lambda below.
  const auto lo_hi = std::minmax_element(volume.labels.begin(), volume.labels.end());
  const auto lo = lo_hi.first;
  const auto hi = lo_hi.second;
  if (*lo < 0) {
    const auto q = static_cast<std::int64_t>(lo - volume.labels.begin());
    throw BadInput(name + ": label " + std::to_string(*lo) + " at voxel " +
                   voxel_string(volume, q) + "; labels must be >= 0");
  }
  const fs::path folder = path.has_parent_path() ? path.parent_path() : fs::path(".");
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) {
    throw IoError(name + ": cannot be written: the folder " + folder.string() + " does not exist");
  }
  register_itk_io();
  write_atomically(path, [&](const fs::path& tmp) {
    if (*hi <= std::numeric_limits<std::uint8_t>::max())
      write_as<std::uint8_t>(path, tmp, format, volume);
    else if (*hi <= std::numeric_limits<std::uint16_t>::max())
      write_as<std::uint16_t>(path, tmp, format, volume);
    else
      write_as<std::int32_t>(path, tmp, format, volume);
  });
}

std::map<std::int32_t, std::int64_t> label_histogram(const LabelVolume& volume) {
  std::map<std::int32_t, std::int64_t> histogram;
  if (volume.labels.empty())
    return histogram;
  // Not a structured binding: clang 14 (the fuzz build) cannot capture one in the lambda below.
  const auto lo_hi = std::minmax_element(volume.labels.begin(), volume.labels.end());
  const auto lo = lo_hi.first;
  const auto hi = lo_hi.second;
  const std::int64_t range = static_cast<std::int64_t>(*hi) - *lo + 1;
  if (range <= (std::int64_t{1} << 20)) {
    // Dense counts for the usual small label range.
    std::vector<std::int64_t> counts(static_cast<std::size_t>(range), 0);
    for (const std::int32_t label : volume.labels)
      ++counts[static_cast<std::size_t>(label - *lo)];
    for (std::int64_t r = 0; r < range; ++r) {
      if (counts[static_cast<std::size_t>(r)] > 0)
        histogram[static_cast<std::int32_t>(r + *lo)] = counts[static_cast<std::size_t>(r)];
    }
    return histogram;
  }
  // Sparse labels: count runs of equal labels, which are long in segmentations.
  std::int32_t current = volume.labels.front();
  std::int64_t run = 0;
  for (const std::int32_t label : volume.labels) {
    if (label != current) {
      histogram[current] += run;
      current = label;
      run = 0;
    }
    ++run;
  }
  histogram[current] += run;
  return histogram;
}

} // namespace myotwin::anatomy
