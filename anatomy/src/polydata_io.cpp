// The only translation unit of the anatomy stage that sees VTK.
#include "myotwin/anatomy/polydata_io.hpp"

#include <set>
#include <sstream>
#include <string>

#include <vtkCellArray.h>
#include <vtkCellData.h>
#include <vtkCellType.h>
#include <vtkCommand.h>
#include <vtkDataArray.h>
#include <vtkDoubleArray.h>
#include <vtkIdTypeArray.h>
#include <vtkIntArray.h>
#include <vtkNew.h>
#include <vtkPointData.h>
#include <vtkPoints.h>
#include <vtkPolyData.h>
#include <vtkSmartPointer.h>
#include <vtkTypeInt64Array.h>
#include <vtkUnstructuredGrid.h>
#include <vtkXMLPolyDataReader.h>
#include <vtkXMLPolyDataWriter.h>
#include <vtkXMLUnstructuredGridReader.h>
#include <vtkXMLUnstructuredGridWriter.h>

#include "myotwin/core/error.hpp"
#include "myotwin/core/files.hpp"

namespace myotwin::anatomy {

namespace {

/// Collects VTK error and warning messages (and keeps them off the terminal).
class MessageCollector : public vtkCommand {
public:
  static MessageCollector* New() { return new MessageCollector; }
  void Execute(vtkObject* /*caller*/, unsigned long event, void* call_data) override {
    const char* text = static_cast<const char*>(call_data);
    std::string message = text != nullptr ? text : "(no message)";
    while (!message.empty() && (message.back() == '\n' || message.back() == ' '))
      message.pop_back();
    if (event == vtkCommand::ErrorEvent)
      errors.push_back(message);
  }
  std::vector<std::string> errors;
};

vtkSmartPointer<vtkDoubleArray> to_vtk(const std::string& name, const Eigen::VectorXd& values) {
  auto a = vtkSmartPointer<vtkDoubleArray>::New();
  a->SetName(name.c_str());
  a->SetNumberOfComponents(1);
  a->SetNumberOfTuples(values.size());
  for (Eigen::Index i = 0; i < values.size(); ++i)
    a->SetValue(i, values[i]);
  return a;
}

vtkSmartPointer<vtkTypeInt64Array> to_vtk(const std::string& name,
                                          const std::vector<std::int64_t>& values) {
  auto a = vtkSmartPointer<vtkTypeInt64Array>::New();
  a->SetName(name.c_str());
  a->SetNumberOfComponents(1);
  a->SetNumberOfTuples(static_cast<vtkIdType>(values.size()));
  for (std::size_t i = 0; i < values.size(); ++i)
    a->SetValue(static_cast<vtkIdType>(i), values[i]);
  return a;
}

vtkSmartPointer<vtkPoints> to_vtk_points(const Eigen::Ref<const Eigen::MatrixX3d>& p) {
  auto points = vtkSmartPointer<vtkPoints>::New();
  points->SetDataTypeToDouble();
  points->SetNumberOfPoints(p.rows());
  for (Eigen::Index i = 0; i < p.rows(); ++i)
    points->SetPoint(i, p(i, 0), p(i, 1), p(i, 2));
  return points;
}

/// Checks array names and lengths of one association ("point" or "line").
template <class A, class B>
void check_arrays(const std::string& file, const std::string& what, std::int64_t n,
                  const std::map<std::string, A>& real, const std::map<std::string, B>& integer) {
  std::set<std::string> names;
  auto check = [&](const std::string& name, std::int64_t size) {
    if (name.empty())
      throw BadInput(file + ": a " + what + " data array has an empty name");
    if (!names.insert(name).second)
      throw BadInput(file + ": " + what + " data array \"" + name + "\" is given twice");
    if (size != n)
      throw BadInput(file + ": " + what + " data array \"" + name + "\" has " +
                     std::to_string(size) + " values; expected " + std::to_string(n) +
                     " (one per " + what + ")");
  };
  for (const auto& [name, values] : real)
    check(name, static_cast<std::int64_t>(values.size()));
  for (const auto& [name, values] : integer)
    check(name, static_cast<std::int64_t>(values.size()));
}

/// Writes a VTK data set with `Writer` (appended binary, zlib, 64-bit headers) atomically.
template <class Writer, class Data>
void write_xml(const std::filesystem::path& path, Data* data, const char* what) {
  write_atomically(path, [&](const std::filesystem::path& tmp) {
    vtkNew<Writer> writer;
    vtkNew<MessageCollector> messages;
    writer->AddObserver(vtkCommand::ErrorEvent, messages);
    writer->AddObserver(vtkCommand::WarningEvent, messages);
    writer->SetFileName(tmp.string().c_str());
    writer->SetInputData(data);
    writer->SetDataModeToAppended();
    writer->EncodeAppendedDataOff();
    writer->SetCompressorTypeToZLib();
    writer->SetHeaderTypeToUInt64();
    if (writer->Write() != 1 || !messages->errors.empty())
      throw IoError(path.string() + ": cannot write VTK " + what +
                    (messages->errors.empty() ? std::string() : ": " + messages->errors.front()));
  });
}

void write_polydata(const std::filesystem::path& path, vtkPolyData* polydata) {
  write_xml<vtkXMLPolyDataWriter>(path, polydata, "PolyData");
}

/// Reads a VTK XML file with `Reader`; `what` and `ext` name the kind in messages.
template <class Reader>
auto read_xml(const std::filesystem::path& path, const char* what, const char* ext) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    throw IoError(path.string() + ": file not found");
  if (std::filesystem::is_directory(path, ec))
    throw IoError(path.string() + ": is a folder, expected a VTK " + what + " file (" + ext + ")");
  vtkNew<Reader> reader;
  vtkNew<MessageCollector> messages;
  reader->AddObserver(vtkCommand::ErrorEvent, messages);
  reader->AddObserver(vtkCommand::WarningEvent, messages);
  reader->SetReaderErrorObserver(messages);
  reader->SetParserErrorObserver(messages);
  if (reader->CanReadFile(path.string().c_str()) == 0)
    throw BadInput(path.string() + ": not a VTK XML " + what + " file (" + ext + ")");
  reader->SetFileName(path.string().c_str());
  reader->Update();
  if (!messages->errors.empty())
    throw BadInput(path.string() + ": cannot read VTK " + what + ": " + messages->errors.front());
  auto out =
      vtkSmartPointer<std::remove_pointer_t<decltype(reader->GetOutput())>>(reader->GetOutput());
  if (out == nullptr)
    throw BadInput(path.string() + ": cannot read VTK " + what);
  return out;
}

vtkSmartPointer<vtkPolyData> read_polydata(const std::filesystem::path& path) {
  return read_xml<vtkXMLPolyDataReader>(path, "PolyData", ".vtp");
}

/// Appends the single-component arrays of `data` (restricted to `keep` tuples, in the order
/// of `tuples`) to the maps.
void read_arrays(vtkFieldData* data, const std::vector<vtkIdType>& tuples,
                 std::map<std::string, Eigen::VectorXd>& real,
                 std::map<std::string, std::vector<std::int64_t>>* integer) {
  for (int a = 0; a < data->GetNumberOfArrays(); ++a) {
    vtkDataArray* array = data->GetArray(a);
    if (array == nullptr || array->GetName() == nullptr || array->GetNumberOfComponents() != 1)
      continue;
    const std::string name = array->GetName();
    const int type = array->GetDataType();
    const bool is_real = type == VTK_FLOAT || type == VTK_DOUBLE;
    if (is_real || integer == nullptr) {
      Eigen::VectorXd values(static_cast<Eigen::Index>(tuples.size()));
      for (std::size_t i = 0; i < tuples.size(); ++i)
        values[static_cast<Eigen::Index>(i)] = array->GetTuple1(tuples[i]);
      real[name] = std::move(values);
    } else {
      std::vector<std::int64_t> values(tuples.size());
      auto* int64 = vtkTypeInt64Array::SafeDownCast(array);
      for (std::size_t i = 0; i < tuples.size(); ++i)
        values[i] = int64 != nullptr ? int64->GetValue(tuples[i])
                                     : static_cast<std::int64_t>(array->GetTuple1(tuples[i]));
      (*integer)[name] = std::move(values);
    }
  }
}

Eigen::MatrixX3d from_vtk_points(vtkPointSet* polydata) {
  const vtkIdType n = polydata->GetNumberOfPoints();
  Eigen::MatrixX3d p(n, 3);
  for (vtkIdType i = 0; i < n; ++i) {
    double x[3];
    polydata->GetPoint(i, x);
    p.row(i) << x[0], x[1], x[2];
  }
  return p;
}

} // namespace

Polylines make_polylines(const std::vector<Eigen::MatrixX3d>& lines_m) {
  Polylines out;
  Eigen::Index n = 0;
  for (const auto& l : lines_m)
    n += l.rows();
  out.points_m.resize(n, 3);
  out.offsets.assign(1, 0);
  Eigen::Index at = 0;
  for (const auto& l : lines_m) {
    out.points_m.middleRows(at, l.rows()) = l;
    at += l.rows();
    out.offsets.push_back(at);
  }
  return out;
}

void write_polylines_vtp(const std::filesystem::path& path, const Polylines& lines) {
  const std::string file = path.string();
  if (lines.offsets.empty() || lines.offsets.front() != 0 ||
      lines.offsets.back() != lines.n_points())
    throw BadInput(file + ": polyline offsets must start at 0 and end at the number of points (" +
                   std::to_string(lines.n_points()) + ")");
  for (std::size_t l = 0; l + 1 < lines.offsets.size(); ++l)
    if (lines.offsets[l + 1] - lines.offsets[l] < 2)
      throw BadInput(file + ": polyline " + std::to_string(l) + " has " +
                     std::to_string(lines.offsets[l + 1] - lines.offsets[l]) +
                     " points; expected at least 2");
  check_arrays(file, "point", lines.n_points(), lines.point_data, lines.point_data_int);
  check_arrays(file, "line", lines.n_lines(), lines.cell_data, lines.cell_data_int);

  vtkNew<vtkPolyData> polydata;
  polydata->SetPoints(to_vtk_points(lines.points_m));
  vtkNew<vtkIdTypeArray> offsets;
  offsets->SetNumberOfTuples(static_cast<vtkIdType>(lines.offsets.size()));
  for (std::size_t i = 0; i < lines.offsets.size(); ++i)
    offsets->SetValue(static_cast<vtkIdType>(i), lines.offsets[i]);
  vtkNew<vtkIdTypeArray> connectivity;
  connectivity->SetNumberOfTuples(lines.n_points());
  for (vtkIdType i = 0; i < lines.n_points(); ++i)
    connectivity->SetValue(i, i);
  vtkNew<vtkCellArray> cells;
  cells->SetData(offsets, connectivity);
  polydata->SetLines(cells);
  for (const auto& [name, values] : lines.point_data)
    polydata->GetPointData()->AddArray(to_vtk(name, values));
  for (const auto& [name, values] : lines.point_data_int)
    polydata->GetPointData()->AddArray(to_vtk(name, values));
  for (const auto& [name, values] : lines.cell_data)
    polydata->GetCellData()->AddArray(to_vtk(name, values));
  for (const auto& [name, values] : lines.cell_data_int)
    polydata->GetCellData()->AddArray(to_vtk(name, values));
  write_polydata(path, polydata);
}

Polylines read_polylines_vtp(const std::filesystem::path& path) {
  const auto polydata = read_polydata(path);
  Polylines out;
  vtkCellArray* lines = polydata->GetLines();
  const Eigen::MatrixX3d all_points = from_vtk_points(polydata);
  // Points in line order (a file written by write_polylines_vtp has them in file order).
  std::vector<vtkIdType> point_ids;
  std::vector<vtkIdType> cell_ids;
  out.offsets.assign(1, 0);
  // Cell ids in vtkPolyData count vertices first, then lines.
  const vtkIdType first_line_cell =
      polydata->GetVerts() != nullptr ? polydata->GetVerts()->GetNumberOfCells() : 0;
  if (lines != nullptr) {
    vtkIdType n_ids = 0;
    const vtkIdType* ids = nullptr;
    vtkIdType c = 0;
    for (lines->InitTraversal(); lines->GetNextCell(n_ids, ids) != 0; ++c) {
      for (vtkIdType k = 0; k < n_ids; ++k)
        point_ids.push_back(ids[k]);
      out.offsets.push_back(static_cast<std::int64_t>(point_ids.size()));
      cell_ids.push_back(first_line_cell + c);
    }
  }
  out.points_m.resize(static_cast<Eigen::Index>(point_ids.size()), 3);
  for (std::size_t i = 0; i < point_ids.size(); ++i)
    out.points_m.row(static_cast<Eigen::Index>(i)) = all_points.row(point_ids[i]);
  read_arrays(polydata->GetPointData(), point_ids, out.point_data, &out.point_data_int);
  read_arrays(polydata->GetCellData(), cell_ids, out.cell_data, &out.cell_data_int);
  return out;
}

void write_surface_vtp(const std::filesystem::path& path,
                       const Eigen::Ref<const Eigen::MatrixX3d>& vertices_m,
                       const Eigen::Ref<const Eigen::MatrixX3i>& triangles,
                       const std::map<std::string, Eigen::VectorXd>& cell_data) {
  const std::string file = path.string();
  if (triangles.size() > 0 &&
      (triangles.minCoeff() < 0 || triangles.maxCoeff() >= vertices_m.rows()))
    throw BadInput(file + ": a triangle vertex index is outside 0.." +
                   std::to_string(vertices_m.rows() - 1));
  check_arrays(file, "triangle", triangles.rows(), cell_data,
               std::map<std::string, std::vector<std::int64_t>>{});
  vtkNew<vtkPolyData> polydata;
  polydata->SetPoints(to_vtk_points(vertices_m));
  vtkNew<vtkIdTypeArray> offsets;
  offsets->SetNumberOfTuples(triangles.rows() + 1);
  for (vtkIdType t = 0; t <= triangles.rows(); ++t)
    offsets->SetValue(t, 3 * t);
  vtkNew<vtkIdTypeArray> connectivity;
  connectivity->SetNumberOfTuples(3 * triangles.rows());
  for (vtkIdType t = 0; t < triangles.rows(); ++t)
    for (int k = 0; k < 3; ++k)
      connectivity->SetValue(3 * t + k, triangles(t, k));
  vtkNew<vtkCellArray> cells;
  cells->SetData(offsets, connectivity);
  polydata->SetPolys(cells);
  for (const auto& [name, values] : cell_data)
    polydata->GetCellData()->AddArray(to_vtk(name, values));
  write_polydata(path, polydata);
}

SurfaceMesh read_surface_vtp(const std::filesystem::path& path) {
  const auto polydata = read_polydata(path);
  SurfaceMesh out;
  out.vertices_m = from_vtk_points(polydata);
  vtkCellArray* polys = polydata->GetPolys();
  const vtkIdType n = polys != nullptr ? polys->GetNumberOfCells() : 0;
  out.triangles.resize(n, 3);
  // Cell ids in vtkPolyData count vertices, lines, polygons, strips in that order.
  const vtkIdType first = (polydata->GetVerts() ? polydata->GetVerts()->GetNumberOfCells() : 0) +
                          (polydata->GetLines() ? polydata->GetLines()->GetNumberOfCells() : 0);
  std::vector<vtkIdType> cell_ids;
  if (polys != nullptr) {
    vtkIdType n_ids = 0;
    const vtkIdType* ids = nullptr;
    vtkIdType c = 0;
    for (polys->InitTraversal(); polys->GetNextCell(n_ids, ids) != 0; ++c) {
      if (n_ids != 3)
        throw BadInput(path.string() + ": polygon " + std::to_string(c) + " has " +
                       std::to_string(n_ids) + " vertices; expected triangles");
      out.triangles.row(c) << static_cast<int>(ids[0]), static_cast<int>(ids[1]),
          static_cast<int>(ids[2]);
      cell_ids.push_back(first + c);
    }
  }
  read_arrays(polydata->GetCellData(), cell_ids, out.cell_data, nullptr);
  return out;
}

void write_tets_vtu(const std::filesystem::path& path, const TetGrid& grid) {
  const std::string file = path.string();
  const auto n = grid.tets.rows();
  if (n > 0 && (grid.tets.minCoeff() < 0 || grid.tets.maxCoeff() >= grid.points_m.rows()))
    throw BadInput(file + ": a tet node index is outside 0.." +
                   std::to_string(grid.points_m.rows() - 1));
  for (const auto& [name, values] : grid.cell_data_int)
    if (static_cast<Eigen::Index>(values.size()) != n)
      throw BadInput(file + ": cell array \"" + name + "\" has " + std::to_string(values.size()) +
                     " values; expected " + std::to_string(n));
  for (const auto& [name, values] : grid.cell_vectors)
    if (values.rows() != n)
      throw BadInput(file + ": cell array \"" + name + "\" has " + std::to_string(values.rows()) +
                     " vectors; expected " + std::to_string(n));
  vtkNew<vtkUnstructuredGrid> ug;
  ug->SetPoints(to_vtk_points(grid.points_m));
  vtkNew<vtkIdTypeArray> offsets;
  offsets->SetNumberOfTuples(n + 1);
  for (vtkIdType t = 0; t <= n; ++t)
    offsets->SetValue(t, 4 * t);
  vtkNew<vtkIdTypeArray> connectivity;
  connectivity->SetNumberOfTuples(4 * n);
  for (vtkIdType t = 0; t < n; ++t)
    for (int k = 0; k < 4; ++k)
      connectivity->SetValue(4 * t + k, grid.tets(t, k));
  vtkNew<vtkCellArray> cells;
  cells->SetData(offsets, connectivity);
  ug->SetCells(VTK_TETRA, cells);
  for (const auto& [name, values] : grid.cell_data_int) {
    vtkNew<vtkIntArray> a;
    a->SetName(name.c_str());
    a->SetNumberOfTuples(n);
    for (vtkIdType t = 0; t < n; ++t)
      a->SetValue(t, values[static_cast<std::size_t>(t)]);
    ug->GetCellData()->AddArray(a);
  }
  for (const auto& [name, values] : grid.cell_vectors) {
    vtkNew<vtkDoubleArray> a;
    a->SetName(name.c_str());
    a->SetNumberOfComponents(3);
    a->SetNumberOfTuples(n);
    for (vtkIdType t = 0; t < n; ++t)
      for (int c = 0; c < 3; ++c)
        a->SetComponent(t, c, values(t, c));
    ug->GetCellData()->AddArray(a);
  }
  write_xml<vtkXMLUnstructuredGridWriter>(path, ug.GetPointer(), "UnstructuredGrid");
}

TetGrid read_tets_vtu(const std::filesystem::path& path) {
  const auto ug = read_xml<vtkXMLUnstructuredGridReader>(path, "UnstructuredGrid", ".vtu");
  const vtkIdType n = ug->GetNumberOfCells();
  if (n == 0)
    throw BadInput(path.string() + ": the grid has no cells; expected a tetrahedral mesh");
  TetGrid out;
  out.points_m = from_vtk_points(ug);
  out.tets.resize(n, 4);
  for (vtkIdType c = 0; c < n; ++c) {
    const int type = ug->GetCellType(c);
    if (type != VTK_TETRA)
      throw BadInput(path.string() + ": cell " + std::to_string(c) + " has VTK type " +
                     std::to_string(type) + "; expected tetrahedra only (VTK_TETRA = " +
                     std::to_string(VTK_TETRA) + "): not a tet mesh");
    vtkIdType n_ids = 0;
    const vtkIdType* ids = nullptr;
    ug->GetCellPoints(c, n_ids, ids);
    for (int k = 0; k < 4; ++k)
      out.tets(c, k) = static_cast<std::int32_t>(ids[k]);
  }
  vtkCellData* data = ug->GetCellData();
  for (int a = 0; a < data->GetNumberOfArrays(); ++a) {
    vtkDataArray* array = data->GetArray(a);
    if (array == nullptr || array->GetName() == nullptr)
      continue;
    const int type = array->GetDataType();
    const bool is_real = type == VTK_FLOAT || type == VTK_DOUBLE;
    if (!is_real && array->GetNumberOfComponents() == 1) {
      std::vector<std::int32_t> v(static_cast<std::size_t>(n));
      for (vtkIdType t = 0; t < n; ++t)
        v[static_cast<std::size_t>(t)] = static_cast<std::int32_t>(array->GetTuple1(t));
      out.cell_data_int[array->GetName()] = std::move(v);
    } else if (is_real && array->GetNumberOfComponents() == 3) {
      Eigen::MatrixX3d v(n, 3);
      for (vtkIdType t = 0; t < n; ++t)
        for (int c = 0; c < 3; ++c)
          v(t, c) = array->GetComponent(t, c);
      out.cell_vectors[array->GetName()] = std::move(v);
    }
  }
  return out;
}

} // namespace myotwin::anatomy
