// Binary-image operations of the subject builder through ITK filters. ITK types stay in this
// file (and label_volume.cpp).

#include "image_ops.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

// See label_volume.cpp: ITK must use the project's Eigen.
#ifndef ITK_USE_SYSTEM_EIGEN
#define ITK_USE_SYSTEM_EIGEN
#endif
#include <itkBinaryFillholeImageFilter.h>
#include <itkConnectedComponentImageFilter.h>
#include <itkImage.h>
#include <itkLinearInterpolateImageFunction.h>
#include <itkNearestNeighborInterpolateImageFunction.h>
#include <itkOtsuThresholdImageFilter.h>
#include <itkResampleImageFilter.h>
#include <itkSignedMaurerDistanceMapImageFilter.h>
#include <itkSliceBySliceImageFilter.h>

#include "itk_bridge.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/units.hpp"

namespace myotwin::anatomy::image_ops {

namespace {

using MaskImage = itk::Image<unsigned char, 3>;
using FloatImage = itk::Image<float, 3>;
using LabelImage = itk::Image<std::int32_t, 3>;
using IdImage = itk::Image<std::uint32_t, 3>;

template <class Pixel, class T>
typename itk::Image<Pixel, 3>::Pointer to_itk(const Grid& grid, const std::vector<T>& data) {
  return itk_bridge::make_image<Pixel>(grid, data);
}

template <class T, class Image> std::vector<T> from_itk(const Image* image, std::int64_t n) {
  const auto* buffer = image->GetBufferPointer();
  return std::vector<T>(buffer, buffer + n);
}

/// Runs an ITK filter, turning ITK's exceptions into myotwin errors naming the step.
template <class Filter> void update(Filter& filter, const char* step) {
  try {
    filter->Update();
  } catch (const itk::ExceptionObject& e) {
    throw Error(std::string("subject builder: ") + step + " failed: " + e.GetDescription());
  }
}

Grid grid_from(const itk::ImageBase<3>* image) {
  Grid g;
  itk_bridge::copy_geometry(*image, g);
  return g;
}

} // namespace

Grid grid_of(const LabelVolume& v) {
  Grid g;
  g.size = v.size;
  g.spacing_m = v.spacing_m;
  g.origin_m = v.origin_m;
  g.direction = v.direction;
  return g;
}

std::vector<float> distance_to_set_m(const Grid& grid, const Mask& set) {
  const std::int64_t n = grid.n_voxels();
  if (std::none_of(set.begin(), set.end(), [](std::uint8_t v) { return v != 0; }))
    return std::vector<float>(static_cast<std::size_t>(n), std::numeric_limits<float>::max());
  auto image = to_itk<unsigned char>(grid, set);
  using Filter = itk::SignedMaurerDistanceMapImageFilter<MaskImage, FloatImage>;
  auto filter = Filter::New();
  filter->SetInput(image);
  filter->SetBackgroundValue(0);
  filter->SetUseImageSpacing(true);
  filter->SetSquaredDistance(false);
  filter->SetInsideIsPositive(false);
  update(filter, "distance map");
  std::vector<float> d = from_itk<float>(filter->GetOutput(), n);
  for (std::int64_t q = 0; q < n; ++q) {
    auto& v = d[static_cast<std::size_t>(q)];
    v = set[static_cast<std::size_t>(q)] != 0 ? 0.0f : static_cast<float>(units::mm_to_m(v));
  }
  return d;
}

Mask fill_holes(const Grid& grid, const Mask& mask) {
  const std::int64_t n = grid.n_voxels();
  auto image = to_itk<unsigned char>(grid, mask);
  using Fill3 = itk::BinaryFillholeImageFilter<MaskImage>;
  auto fill3 = Fill3::New();
  fill3->SetInput(image);
  fill3->SetForegroundValue(1);
  fill3->SetFullyConnected(false);
  update(fill3, "3-D hole filling");

  using Slice = itk::Image<unsigned char, 2>;
  using Fill2 = itk::BinaryFillholeImageFilter<Slice>;
  using BySlice = itk::SliceBySliceImageFilter<MaskImage, MaskImage>;
  auto fill2 = Fill2::New();
  fill2->SetForegroundValue(1);
  fill2->SetFullyConnected(false);
  auto by_slice = BySlice::New();
  by_slice->SetInput(fill3->GetOutput());
  by_slice->SetFilter(fill2);
  by_slice->SetDimension(2);
  update(by_slice, "slice-by-slice hole filling");
  return from_itk<std::uint8_t>(by_slice->GetOutput(), n);
}

Components connected_components(const Grid& grid, const Mask& mask) {
  const std::int64_t n = grid.n_voxels();
  Components out;
  auto image = to_itk<unsigned char>(grid, mask);
  using Filter = itk::ConnectedComponentImageFilter<MaskImage, IdImage>;
  auto filter = Filter::New();
  filter->SetInput(image);
  filter->SetFullyConnected(false); // 6-connectivity
  filter->SetBackgroundValue(0);
  update(filter, "connected components");
  std::vector<std::uint32_t> raw = from_itk<std::uint32_t>(filter->GetOutput(), n);
  // Renumber deterministically: by decreasing size, ties by first voxel in grid order.
  std::vector<std::int64_t> size;
  std::vector<std::int64_t> first;
  for (std::int64_t q = 0; q < n; ++q) {
    const std::uint32_t c = raw[static_cast<std::size_t>(q)];
    if (c == 0)
      continue;
    if (c >= size.size()) {
      size.resize(c + 1, 0);
      first.resize(c + 1, -1);
    }
    if (size[c]++ == 0)
      first[c] = q;
  }
  std::vector<std::uint32_t> order;
  for (std::uint32_t c = 1; c < size.size(); ++c) {
    if (size[c] > 0)
      order.push_back(c);
  }
  std::sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) {
    return size[a] != size[b] ? size[a] > size[b] : first[a] < first[b];
  });
  std::vector<std::uint32_t> new_id(size.size(), 0);
  out.sizes.assign(order.size() + 1, 0);
  for (std::size_t r = 0; r < order.size(); ++r) {
    new_id[order[r]] = static_cast<std::uint32_t>(r + 1);
    out.sizes[r + 1] = size[order[r]];
  }
  out.id.resize(raw.size());
  for (std::size_t q = 0; q < raw.size(); ++q)
    out.id[q] = new_id[raw[q]];
  return out;
}

double otsu_threshold(const Grid& grid, const std::vector<float>& values) {
  auto image = to_itk<float>(grid, values);
  using Filter = itk::OtsuThresholdImageFilter<FloatImage, MaskImage>;
  auto filter = Filter::New();
  filter->SetInput(image);
  filter->SetNumberOfHistogramBins(256);
  update(filter, "Otsu threshold");
  return static_cast<double>(filter->GetThreshold());
}

LabelVolume resample_labels(const LabelVolume& v, double voxel_m) {
  const Grid in = grid_of(v);
  auto image = to_itk<std::int32_t>(in, v.labels);
  Grid out = in;
  for (int d = 0; d < 3; ++d) {
    const double extent = static_cast<double>(in.size[d]) * in.spacing_m[d];
    out.size[d] =
        std::max<std::int64_t>(1, static_cast<std::int64_t>(std::llround(extent / voxel_m)));
    out.spacing_m[d] = voxel_m;
  }
  // The first voxel's corner stays where it was.
  out.origin_m = in.origin_m + in.direction * (0.5 * (out.spacing_m - in.spacing_m));
  using Filter = itk::ResampleImageFilter<LabelImage, LabelImage>;
  auto filter = Filter::New();
  filter->SetInput(image);
  filter->SetInterpolator(itk::NearestNeighborInterpolateImageFunction<LabelImage>::New());
  const auto reference = to_itk<std::int32_t>(out, std::vector<std::int32_t>{});
  filter->SetOutputParametersFromImage(reference);
  filter->SetDefaultPixelValue(0);
  update(filter, "label resampling");
  LabelVolume r;
  const Grid g = grid_from(filter->GetOutput());
  r.size = g.size;
  r.spacing_m = g.spacing_m;
  r.origin_m = g.origin_m;
  r.direction = g.direction;
  r.labels = from_itk<std::int32_t>(filter->GetOutput(), g.n_voxels());
  return r;
}

IntensityVolume resample_intensity(const IntensityVolume& v, const Grid& target,
                                   float outside_value) {
  Grid in;
  in.size = v.size;
  in.spacing_m = v.spacing_m;
  in.origin_m = v.origin_m;
  in.direction = v.direction;
  auto image = to_itk<float>(in, v.values);
  using Filter = itk::ResampleImageFilter<FloatImage, FloatImage>;
  auto filter = Filter::New();
  filter->SetInput(image);
  filter->SetInterpolator(itk::LinearInterpolateImageFunction<FloatImage>::New());
  const auto reference = to_itk<float>(target, std::vector<float>{});
  filter->SetOutputParametersFromImage(reference);
  filter->SetDefaultPixelValue(outside_value);
  update(filter, "image resampling");
  IntensityVolume r;
  r.size = target.size;
  r.spacing_m = target.spacing_m;
  r.origin_m = target.origin_m;
  r.direction = target.direction;
  r.values = from_itk<float>(filter->GetOutput(), target.n_voxels());
  return r;
}

} // namespace myotwin::anatomy::image_ops
