// Label volume I/O. Test images are written with ITK directly (explicit ImageIO objects, no
// factories), so that geometry and labels can be compared with what ITK itself reports.

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include <Eigen/Geometry>
#include <gtest/gtest.h>
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
#include <itkImageRegionConstIterator.h>
#include <itkMetaImageIO.h>
#include <itkNiftiImageIO.h>
#include <itkNrrdImageIO.h>
#include <itkRGBPixel.h>

#include "myotwin/anatomy/label_volume.hpp"
#include "myotwin/core/error.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using myotwin::BadInput;
using myotwin::IoError;
using myotwin::anatomy::label_histogram;
using myotwin::anatomy::LabelVolume;
using myotwin::anatomy::read_label_volume;
using myotwin::anatomy::write_label_volume;
using myotwin::testing::expect_error;
using myotwin::testing::TempDir;

namespace {

/// An ImageIO for the file's format, chosen explicitly (the tests do not use ITK's factories).
itk::ImageIOBase::Pointer io_for(const fs::path& path) {
  const std::string name = path.filename().string();
  if (name.find(".nii") != std::string::npos)
    return itk::NiftiImageIO::New().GetPointer();
  if (name.find(".nrrd") != std::string::npos)
    return itk::NrrdImageIO::New().GetPointer();
  return itk::MetaImageIO::New().GetPointer();
}

/// A rotation by `angle` about the unit vector `axis`.
itk::Matrix<double, 3, 3> rotation(double angle, Eigen::Vector3d axis) {
  const Eigen::Matrix3d r = Eigen::AngleAxisd(angle, axis.normalized()).toRotationMatrix();
  itk::Matrix<double, 3, 3> m;
  for (unsigned i = 0; i < 3; ++i)
    for (unsigned j = 0; j < 3; ++j)
      m(i, j) = r(i, j);
  return m;
}

/// Geometry of the test images: anisotropic spacing and an oblique direction.
struct Geometry {
  std::array<itk::SizeValueType, 3> size{7, 5, 4};
  std::array<double, 3> spacing_mm{0.5, 0.8, 2.0};
  std::array<double, 3> origin_mm{-12.5, 30.25, 101.0};
  itk::Matrix<double, 3, 3> direction = rotation(0.4, Eigen::Vector3d(1.0, 2.0, 3.0));
};

/// The label of voxel (i, j, k) in the test images: a pattern that tells axes apart.
int pattern(itk::IndexValueType i, itk::IndexValueType j, itk::IndexValueType k) {
  return static_cast<int>((i * 7 + j * 3 + k * 11) % 17);
}

template <class Pixel, unsigned Dim = 3>
typename itk::Image<Pixel, Dim>::Pointer
make_image(const Geometry& g, const std::function<Pixel(itk::IndexValueType, itk::IndexValueType,
                                                        itk::IndexValueType)>& value) {
  using Image = itk::Image<Pixel, Dim>;
  auto image = Image::New();
  typename Image::SizeType size;
  typename Image::SpacingType spacing;
  typename Image::PointType origin;
  typename Image::DirectionType direction;
  for (unsigned d = 0; d < Dim; ++d) {
    size[d] = g.size[d];
    spacing[d] = g.spacing_mm[d];
    origin[d] = g.origin_mm[d];
    for (unsigned c = 0; c < Dim; ++c)
      direction(d, c) = Dim == 3 ? g.direction(d, c) : (d == c ? 1.0 : 0.0);
  }
  typename Image::RegionType region;
  region.SetSize(size);
  image->SetRegions(region);
  image->SetSpacing(spacing);
  image->SetOrigin(origin);
  image->SetDirection(direction);
  image->Allocate();
  itk::ImageRegionIterator<Image> it(image, region);
  for (; !it.IsAtEnd(); ++it) {
    const auto idx = it.GetIndex();
    it.Set(value(idx[0], idx[1], Dim == 3 ? idx[2] : 0));
  }
  return image;
}

template <class Image> void write_itk(const fs::path& path, const Image* image) {
  auto writer = itk::ImageFileWriter<Image>::New();
  writer->SetImageIO(io_for(path));
  writer->SetFileName(path.string());
  writer->SetInput(image);
  writer->Update();
}

template <class Pixel> void write_pattern(const fs::path& path, const Geometry& g = {}) {
  auto image = make_image<Pixel>(
      g, [](auto i, auto j, auto k) { return static_cast<Pixel>(pattern(i, j, k)); });
  write_itk(path, image.GetPointer());
}

/// The file read back by ITK itself, as int32.
itk::Image<std::int32_t, 3>::Pointer read_itk(const fs::path& path) {
  using Image = itk::Image<std::int32_t, 3>;
  auto reader = itk::ImageFileReader<Image>::New();
  reader->SetImageIO(io_for(path));
  reader->SetFileName(path.string());
  reader->Update();
  return reader->GetOutput();
}

/// The stored component type of a file, as ITK names it.
std::string component_type(const fs::path& path) {
  auto io = io_for(path);
  io->SetFileName(path.string());
  io->ReadImageInformation();
  return itk::ImageIOBase::GetComponentTypeAsString(io->GetComponentType());
}

/// Expects `volume` to agree with ITK's reading of the same file: geometry, physical points of
/// several voxels (to 1e-9 m) and every label.
void expect_matches_itk(const LabelVolume& volume, const fs::path& path) {
  const auto image = read_itk(path);
  const auto size = image->GetLargestPossibleRegion().GetSize();
  for (unsigned d = 0; d < 3; ++d) {
    EXPECT_EQ(volume.size[d], static_cast<std::int64_t>(size[d]));
    EXPECT_NEAR(volume.spacing_m[d], image->GetSpacing()[d] * 1e-3, 1e-12);
    EXPECT_NEAR(volume.origin_m[d], image->GetOrigin()[d] * 1e-3, 1e-12);
    for (unsigned c = 0; c < 3; ++c)
      EXPECT_NEAR(volume.direction(d, c), image->GetDirection()(d, c), 1e-12);
  }
  const std::vector<std::array<itk::IndexValueType, 3>> voxels = {
      {0, 0, 0},
      {1, 0, 0},
      {0, 1, 0},
      {0, 0, 1},
      {static_cast<itk::IndexValueType>(size[0] - 1), static_cast<itk::IndexValueType>(size[1] - 1),
       static_cast<itk::IndexValueType>(size[2] - 1)},
      {static_cast<itk::IndexValueType>(size[0] / 2), static_cast<itk::IndexValueType>(size[1] / 3),
       static_cast<itk::IndexValueType>(size[2] / 2)}};
  for (const auto& v : voxels) {
    itk::Index<3> index{{v[0], v[1], v[2]}};
    itk::Point<double, 3> p_mm;
    image->TransformIndexToPhysicalPoint(index, p_mm);
    const Eigen::Vector3d p = volume.physical_point(
        static_cast<double>(v[0]), static_cast<double>(v[1]), static_cast<double>(v[2]));
    for (unsigned d = 0; d < 3; ++d)
      EXPECT_NEAR(p[d], p_mm[d] * 1e-3, 1e-9) << "voxel " << v[0] << "," << v[1] << "," << v[2];
  }
  itk::ImageRegionConstIterator<itk::Image<std::int32_t, 3>> it(image,
                                                                image->GetLargestPossibleRegion());
  std::int64_t mismatches = 0;
  for (; !it.IsAtEnd(); ++it) {
    const auto idx = it.GetIndex();
    mismatches += volume.at(idx[0], idx[1], idx[2]) != it.Get() ? 1 : 0;
  }
  EXPECT_EQ(mismatches, 0);
}

/// Expects two volumes to be equal: geometry to `tol_m` (file formats store float or text) and
/// every label exactly.
void expect_same_volume(const LabelVolume& a, const LabelVolume& b, double tol_m) {
  EXPECT_EQ(a.size, b.size);
  for (int d = 0; d < 3; ++d) {
    EXPECT_NEAR(a.spacing_m[d], b.spacing_m[d], tol_m);
    EXPECT_NEAR(a.origin_m[d], b.origin_m[d], tol_m);
    for (int c = 0; c < 3; ++c)
      EXPECT_NEAR(a.direction(d, c), b.direction(d, c), 1e-6);
  }
  EXPECT_EQ(a.labels, b.labels);
}

/// A small volume with an oblique direction, anisotropic spacing and labels up to `max_label`.
LabelVolume make_volume(std::int32_t max_label) {
  LabelVolume v;
  v.size = {6, 4, 3};
  v.spacing_m = Eigen::Vector3d(0.5e-3, 0.8e-3, 2.0e-3);
  v.origin_m = Eigen::Vector3d(-0.0125, 0.03025, 0.101);
  v.direction = Eigen::AngleAxisd(-0.7, Eigen::Vector3d(0.3, -1.0, 0.5).normalized()).matrix();
  v.labels.resize(static_cast<std::size_t>(v.n_voxels()));
  for (std::size_t q = 0; q < v.labels.size(); ++q)
    v.labels[q] = static_cast<std::int32_t>((q * 37) % 11);
  v.labels.back() = max_label;
  return v;
}

/// Test names from extensions: ".nii.gz" -> "nii_gz".
std::string format_name(const ::testing::TestParamInfo<std::string>& param_info) {
  std::string s = param_info.param.substr(1);
  std::replace(s.begin(), s.end(), '.', '_');
  return s;
}

} // namespace

// ---- reading files written by ITK -------------------------------------------------------------

class ReadLabelVolume : public ::testing::TestWithParam<std::string> {};

TEST_P(ReadLabelVolume, MatchesItkGeometryPhysicalPointsAndLabelsWithAnisotropicObliqueVoxels) {
  TempDir dir;
  const fs::path path = dir / ("labels" + GetParam());
  const Geometry g;
  write_pattern<std::uint8_t>(path, g);

  const LabelVolume volume = read_label_volume(path);
  expect_matches_itk(volume, path);

  // And the geometry is the one written, in metres (NIfTI stores float32: 1e-6 m).
  EXPECT_EQ(volume.size, (std::array<std::int64_t, 3>{7, 5, 4}));
  for (unsigned d = 0; d < 3; ++d) {
    EXPECT_NEAR(volume.spacing_m[d], g.spacing_mm[d] * 1e-3, 1e-9);
    EXPECT_NEAR(volume.origin_m[d], g.origin_mm[d] * 1e-3, 1e-6);
    for (unsigned c = 0; c < 3; ++c)
      EXPECT_NEAR(volume.direction(d, c), g.direction(d, c), 1e-5);
  }
  // x = origin + direction * diag(spacing) * (i, j, k), by hand for voxel (6, 4, 3).
  Eigen::Vector3d expected_mm;
  for (unsigned r = 0; r < 3; ++r) {
    expected_mm[r] = g.origin_mm[r] + g.direction(r, 0) * g.spacing_mm[0] * 6 +
                     g.direction(r, 1) * g.spacing_mm[1] * 4 +
                     g.direction(r, 2) * g.spacing_mm[2] * 3;
  }
  EXPECT_LT((volume.physical_point(6, 4, 3) - expected_mm * 1e-3).norm(), 1e-6);
  EXPECT_EQ(volume.at(3, 2, 1), pattern(3, 2, 1));
  EXPECT_EQ(volume.at(6, 0, 0), pattern(6, 0, 0));
  EXPECT_EQ(volume.at(0, 4, 0), pattern(0, 4, 0));
}

INSTANTIATE_TEST_SUITE_P(Formats, ReadLabelVolume,
                         ::testing::Values(".nii.gz", ".nii", ".nrrd", ".mha"), format_name);

TEST(LabelVolume, ReadsEveryIntegerPixelTypeAsInt32Labels) {
  TempDir dir;
  write_pattern<std::int16_t>(dir / "s16.nrrd");
  write_pattern<std::uint16_t>(dir / "u16.nii.gz");
  write_pattern<std::uint32_t>(dir / "u32.mha");
  write_pattern<std::int64_t>(dir / "s64.nrrd");
  for (const char* name : {"s16.nrrd", "u16.nii.gz", "u32.mha", "s64.nrrd"}) {
    const LabelVolume v = read_label_volume(dir / name);
    EXPECT_EQ(v.at(5, 3, 2), pattern(5, 3, 2)) << name;
    expect_matches_itk(v, dir / name);
  }
  // Large labels survive.
  auto big = make_image<std::uint32_t>(Geometry{}, [](auto i, auto, auto) {
    return static_cast<std::uint32_t>(i == 2 ? 70000 : 0);
  });
  write_itk(dir / "big.nrrd", big.GetPointer());
  EXPECT_EQ(read_label_volume(dir / "big.nrrd").at(2, 1, 1), 70000);
}

// ---- writing ------------------------------------------------------------------------------------

class WriteLabelVolume : public ::testing::TestWithParam<std::string> {};

TEST_P(WriteLabelVolume, RoundTripKeepsGeometryAndLabelsAndPicksTheSmallestPixelType) {
  TempDir dir;
  const std::vector<std::pair<std::int32_t, std::string>> cases = {
      {200, "unsigned_char"}, {40000, "unsigned_short"}, {100000, "int"}};
  for (const auto& [max_label, stored_type] : cases) {
    const LabelVolume v = make_volume(max_label);
    const fs::path path = dir / ("out_" + std::to_string(max_label) + GetParam());
    write_label_volume(path, v);
    EXPECT_EQ(component_type(path), stored_type) << path;
    const LabelVolume back = read_label_volume(path);
    // NIfTI stores geometry as float32; NRRD and MetaImage as text.
    const double tol_m = GetParam().find(".nii") != std::string::npos ? 1e-7 : 1e-12;
    expect_same_volume(v, back, tol_m);
    EXPECT_LT((v.physical_point(5, 3, 2) - back.physical_point(5, 3, 2)).norm(), 1e-6);
    EXPECT_EQ(label_histogram(v), label_histogram(back));
  }
  // No temporary files are left behind.
  std::size_t n_files = 0;
  for (const auto& entry : fs::directory_iterator(dir.path())) {
    EXPECT_EQ(entry.path().filename().string().rfind(".tmp", 0), std::string::npos) << entry.path();
    ++n_files;
  }
  EXPECT_EQ(n_files, cases.size());
}

INSTANTIATE_TEST_SUITE_P(Formats, WriteLabelVolume,
                         ::testing::Values(".nii.gz", ".nii", ".nrrd", ".mha"), format_name);

TEST(LabelVolume, WriteRejectsDetachedHeadersUnknownExtensionsNegativeLabelsAndMissingFolders) {
  TempDir dir;
  const LabelVolume v = make_volume(3);
  expect_error<BadInput>([&] { write_label_volume(dir / "x.mhd", v); },
                         {"x.mhd", ".mhd", ".nii.gz, .nii, .nrrd or .mha"});
  expect_error<BadInput>([&] { write_label_volume(dir / "x.png", v); }, {"x.png", ".png"});
  LabelVolume negative = v;
  negative.labels[negative.index(2, 1, 0)] = -4;
  expect_error<BadInput>([&] { write_label_volume(dir / "neg.nrrd", negative); },
                         {"neg.nrrd", "label -4 at voxel (2, 1, 0)", "must be >= 0"});
  LabelVolume short_labels = v;
  short_labels.labels.pop_back();
  expect_error<BadInput>([&] { write_label_volume(dir / "short.nrrd", short_labels); },
                         {"short.nrrd", "71 labels for 72 voxels"});
  expect_error<IoError>([&] { write_label_volume(dir / "no_such_folder" / "x.nii.gz", v); },
                        {"x.nii.gz", "cannot be written"});
  EXPECT_TRUE(fs::is_empty(dir.path()));
}

// ---- bad input ----------------------------------------------------------------------------------

TEST(LabelVolume, MissingFileIsAnIoErrorNamingTheFile) {
  TempDir dir;
  expect_error<IoError>([&] { read_label_volume(dir / "absent.nii.gz"); },
                        {(dir / "absent.nii.gz").string(), "no such file"});
}

TEST(LabelVolume, UnsupportedExtensionIsBadInputListingTheSupportedOnes) {
  TempDir dir;
  std::ofstream(dir / "labels.png") << "not an image";
  expect_error<BadInput>([&] { read_label_volume(dir / "labels.png"); },
                         {"labels.png", "unsupported file type \".png\"", ".nii", ".nii.gz",
                          ".nrrd", ".nhdr", ".mha", ".mhd"});
  expect_error<BadInput>([&] { read_label_volume(dir / "labels.tar.gz"); },
                         {"labels.tar.gz", "\".tar.gz\""});
}

TEST(LabelVolume, TruncatedOrCorruptNiftiIsBadInputNamingTheFile) {
  TempDir dir;
  // A compressed NIfTI cut in half.
  const fs::path gz = dir / "truncated.nii.gz";
  write_pattern<std::uint8_t>(gz,
                              Geometry{{40, 40, 40}, {1, 1, 1}, {0, 0, 0}, rotation(0, {0, 0, 1})});
  fs::resize_file(gz, fs::file_size(gz) / 2);
  expect_error<BadInput>([&] { read_label_volume(gz); }, {gz.string(), "corrupt or truncated"});

  // An uncompressed NIfTI whose header is intact but whose data stop early.
  const fs::path nii = dir / "short_data.nii";
  write_pattern<std::uint8_t>(nii,
                              Geometry{{40, 40, 40}, {1, 1, 1}, {0, 0, 0}, rotation(0, {0, 0, 1})});
  fs::resize_file(nii, 352 + 1000);
  expect_error<BadInput>([&] { read_label_volume(nii); }, {nii.string(), "corrupt or truncated"});

  // A header cut short, and a file that is not NIfTI at all.
  const fs::path header = dir / "header.nii";
  write_pattern<std::uint8_t>(header);
  fs::resize_file(header, 100);
  expect_error<BadInput>([&] { read_label_volume(header); }, {header.string()});
  const fs::path junk = dir / "junk.nii.gz";
  std::ofstream(junk) << "this is not an image at all";
  expect_error<BadInput>([&] { read_label_volume(junk); }, {junk.string()});
}

TEST(LabelVolume, TruncatedNrrdAndMetaImageAreBadInputNamingTheFile) {
  TempDir dir;
  LabelVolume v;
  v.size = {60, 50, 40};
  v.labels.resize(static_cast<std::size_t>(v.n_voxels()));
  for (std::size_t q = 0; q < v.labels.size(); ++q)
    v.labels[q] = static_cast<std::int32_t>((q * 7919) % 251);
  for (const char* name : {"cut.nrrd", "cut.mha"}) {
    const fs::path p = dir / name;
    write_label_volume(p, v);
    fs::resize_file(p, fs::file_size(p) / 2);
    expect_error<BadInput>([&] { read_label_volume(p); }, {p.string(), "corrupt or truncated"});
  }
}

TEST(LabelVolume, FourDimensionalImageIsReadOnlyWhenItsFourthSizeIsOne) {
  TempDir dir;
  using Image = itk::Image<std::uint8_t, 4>;
  for (const itk::SizeValueType n_t : {1u, 2u}) {
    auto image = Image::New();
    Image::RegionType region;
    region.SetSize({{7, 5, 4, n_t}});
    image->SetRegions(region);
    image->Allocate();
    image->FillBuffer(3);
    const fs::path p = dir / ("t" + std::to_string(n_t) + ".nii.gz");
    write_itk(p, image.GetPointer());
    if (n_t == 1) {
      const LabelVolume volume = read_label_volume(p);
      EXPECT_EQ(volume.size, (std::array<std::int64_t, 3>{7, 5, 4}));
      EXPECT_EQ(label_histogram(volume).at(3), 140);
    } else {
      expect_error<BadInput>(
          [&] { read_label_volume(p); },
          {p.string(), "4 dimensions (size 7 x 5 x 4 x 2)", "expected a 3-D label volume"});
    }
  }
}

TEST(LabelVolume, FloatImageIsBadInputNamingThePixelType) {
  TempDir dir;
  auto image = make_image<float>(Geometry{}, [](auto i, auto, auto) { return 0.5f * i; });
  write_itk(dir / "ct.nii.gz", image.GetPointer());
  expect_error<BadInput>([&] { read_label_volume(dir / "ct.nii.gz"); },
                         {"ct.nii.gz", "pixel type float", "expected integer labels"});
  auto d = make_image<double>(Geometry{}, [](auto, auto, auto) { return 1.0; });
  write_itk(dir / "d.nrrd", d.GetPointer());
  expect_error<BadInput>([&] { read_label_volume(dir / "d.nrrd"); },
                         {"d.nrrd", "pixel type double", "expected integer labels"});
}

TEST(LabelVolume, RgbImageIsBadInputNamingTheComponents) {
  TempDir dir;
  using Rgb = itk::RGBPixel<unsigned char>;
  auto image = make_image<Rgb>(Geometry{}, [](auto i, auto j, auto k) {
    Rgb p;
    p.Set(static_cast<unsigned char>(i), static_cast<unsigned char>(j),
          static_cast<unsigned char>(k));
    return p;
  });
  write_itk(dir / "photo.mha", image.GetPointer());
  expect_error<BadInput>(
      [&] { read_label_volume(dir / "photo.mha"); },
      {"photo.mha", "3 components per voxel", "expected one integer label per voxel"});
}

TEST(LabelVolume, TwoDimensionalImageIsBadInput) {
  TempDir dir;
  auto image = make_image<std::uint8_t, 2>(
      Geometry{}, [](auto i, auto j, auto) { return static_cast<std::uint8_t>(i + j); });
  for (const char* name : {"slice.nii.gz", "slice.nrrd"}) {
    write_itk(dir / name, image.GetPointer());
    expect_error<BadInput>([&] { read_label_volume(dir / name); },
                           {name, "image has 2 dimensions; expected a 3-D label volume"});
  }
}

TEST(LabelVolume, NegativeLabelIsBadInputNamingTheVoxel) {
  TempDir dir;
  auto image = make_image<std::int16_t>(Geometry{}, [](auto i, auto j, auto k) {
    return static_cast<std::int16_t>(i == 1 && j == 2 && k == 3 ? -3 : 1);
  });
  write_itk(dir / "signed.nii.gz", image.GetPointer());
  expect_error<BadInput>([&] { read_label_volume(dir / "signed.nii.gz"); },
                         {"signed.nii.gz", "label -3 at voxel (1, 2, 3); labels must be >= 0"});
}

TEST(LabelVolume, FolderInsteadOfFileIsAnIoError) {
  TempDir dir;
  fs::create_directory(dir / "folder.nii");
  expect_error<IoError>([&] { read_label_volume(dir / "folder.nii"); }, {"folder.nii", "folder"});
}

// ---- histogram and paths ------------------------------------------------------------------------

TEST(LabelVolume, HistogramCountsEveryLabelInIncreasingOrder) {
  LabelVolume v;
  v.size = {4, 2, 1};
  v.labels = {0, 3, 3, 7, 0, 0, 3, 1};
  const auto h = label_histogram(v);
  const std::map<std::int32_t, std::int64_t> expected = {{0, 3}, {1, 1}, {3, 3}, {7, 1}};
  EXPECT_EQ(h, expected);

  // Sparse, large labels take the other path and give the same kind of answer.
  v.labels = {0, 2000000000, 2000000000, 5, 0, 0, 5, 2000000000};
  const std::map<std::int32_t, std::int64_t> sparse = {{0, 3}, {5, 2}, {2000000000, 3}};
  EXPECT_EQ(label_histogram(v), sparse);
  EXPECT_TRUE(label_histogram(LabelVolume{}).empty());
}

TEST(LabelVolume, RecognisesLabelVolumePathsByExtension) {
  using myotwin::anatomy::is_label_volume_path;
  for (const char* ok :
       {"a.nii", "a.nii.gz", "A.NII.GZ", "dir.x/a.nrrd", "a.nhdr", "a.mha", "a.mhd"})
    EXPECT_TRUE(is_label_volume_path(ok)) << ok;
  for (const char* bad : {"a.png", "a.gz", "a.tar.gz", "nii", "a.nii.zip", "a", ".nii"})
    EXPECT_FALSE(is_label_volume_path(bad)) << bad;
}

// ---- the real CT segmentation -------------------------------------------------------------------

TEST(LabelVolume, RealCtSegmentationHistogramMatchesAnIndependentItkCount) {
  const fs::path path = myotwin::testing::shared_data("real/totalsegmentator_ct/organs_seg.nii.gz");
  if (path.empty())
    GTEST_SKIP() << "real data absent: " MYOTWIN_SHARED_DATA
                    "/real/totalsegmentator_ct/organs_seg.nii.gz";
  const LabelVolume v = read_label_volume(path);
  EXPECT_EQ(v.size, (std::array<std::int64_t, 3>{122, 101, 30}));
  for (int d = 0; d < 3; ++d)
    EXPECT_NEAR(v.spacing_m[d], 3e-3, 1e-9);

  // Independent count: ITK reads the file and an iterator counts.
  const auto image = read_itk(path);
  std::map<std::int32_t, std::int64_t> expected;
  for (itk::ImageRegionConstIterator<itk::Image<std::int32_t, 3>> it(
           image, image->GetLargestPossibleRegion());
       !it.IsAtEnd(); ++it)
    ++expected[it.Get()];
  const auto histogram = label_histogram(v);
  EXPECT_EQ(histogram, expected);
  EXPECT_EQ(histogram.size(), 42u);  // background and 41 structures
  EXPECT_EQ(histogram.at(5), 38634); // liver
  std::int64_t total = 0;
  for (const auto& [label, count] : histogram)
    total += count;
  EXPECT_EQ(total, 122 * 101 * 30);
  expect_matches_itk(v, path);

  // The sform is RAS diag(3, 3, 3); ITK reports LPS, so i -> R (-x), j -> A (-y), k -> S (+z).
  EXPECT_NEAR(v.direction(0, 0), -1.0, 1e-6);
  EXPECT_NEAR(v.direction(1, 1), -1.0, 1e-6);
  EXPECT_NEAR(v.direction(2, 2), 1.0, 1e-6);
  EXPECT_NEAR(v.origin_m[0], 0.17795633, 1e-6);
  EXPECT_NEAR(v.origin_m[1], -0.011319, 1e-6);
  EXPECT_NEAR(v.origin_m[2], 0.0943018, 1e-6);
}
