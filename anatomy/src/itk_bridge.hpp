#pragma once
// Private to the anatomy library: copying a regular grid's geometry (size, spacing, origin,
// direction; metres in myotwin, millimetres in ITK) and data between myotwin's volumes
// (LabelVolume, IntensityVolume, image_ops::Grid: anything with `size`, `spacing_m`,
// `origin_m` and `direction`) and ITK images. Included only by the files that use ITK.

#include <cstdint>
#include <vector>

#include <itkImage.h>

#include "myotwin/core/units.hpp"

namespace myotwin::anatomy::itk_bridge {

/// A new ITK image with the geometry of `grid`, allocated; its buffer holds a copy of the first
/// `data.size()` values of `data` (none when empty) converted to `Pixel`.
template <class Pixel, class Grid, class T>
typename itk::Image<Pixel, 3>::Pointer make_image(const Grid& grid, const std::vector<T>& data) {
  using Image = itk::Image<Pixel, 3>;
  auto image = Image::New();
  typename Image::SizeType size;
  typename Image::SpacingType spacing;
  typename Image::PointType origin;
  typename Image::DirectionType direction;
  for (unsigned d = 0; d < 3; ++d) {
    size[d] = static_cast<itk::SizeValueType>(grid.size[d]);
    spacing[d] = units::m_to_mm(grid.spacing_m[d]);
    origin[d] = units::m_to_mm(grid.origin_m[d]);
    for (unsigned c = 0; c < 3; ++c)
      direction(d, c) = grid.direction(d, c);
  }
  typename Image::RegionType region;
  region.SetSize(size);
  image->SetRegions(region);
  image->SetSpacing(spacing);
  image->SetOrigin(origin);
  image->SetDirection(direction);
  image->Allocate();
  Pixel* buffer = image->GetBufferPointer();
  for (std::size_t q = 0; q < data.size(); ++q)
    buffer[q] = static_cast<Pixel>(data[q]);
  return image;
}

/// Copies the geometry of `image` into `grid` (mm -> m).
template <class Grid> void copy_geometry(const itk::ImageBase<3>& image, Grid& grid) {
  const auto size = image.GetLargestPossibleRegion().GetSize();
  for (unsigned d = 0; d < 3; ++d) {
    grid.size[d] = static_cast<std::int64_t>(size[d]);
    grid.spacing_m[d] = units::mm_to_m(image.GetSpacing()[d]);
    grid.origin_m[d] = units::mm_to_m(image.GetOrigin()[d]);
    for (unsigned c = 0; c < 3; ++c)
      grid.direction(d, c) = image.GetDirection()(d, c);
  }
}

} // namespace myotwin::anatomy::itk_bridge
