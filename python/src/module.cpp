// The Python module `myotwin` (its compiled part, `myotwin._core`): the stage libraries called
// from Python with NumPy arrays in and out (docs/python.md). A thin layer, like a subcommand: it
// converts arguments, reads the configuration through the same declared readers as the command
// line (read_run_config()), calls the library with the GIL released and converts the results.
// Errors keep their messages: BadInput -> ValueError, IoError -> OSError, other errors ->
// RuntimeError.

#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include <omp.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "commands.hpp"
#include "common.hpp"
#include "myotwin/anatomy/subject.hpp"
#include "myotwin/core/config.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/files.hpp"
#include "myotwin/core/hdf5_io.hpp"
#include "myotwin/core/log.hpp"
#include "myotwin/core/resources.hpp"
#include "myotwin/forward/io/emg_file.hpp"
#include "myotwin/inversion/decompose.hpp"
#include "myotwin/inversion/decomposition_io.hpp"
#include "myotwin/inversion/score.hpp"
#include "myotwin/meshing/mesh_io.hpp"

namespace py = pybind11;
namespace fs = std::filesystem;

namespace myotwin::python {

namespace {

// ---- Arrays out

/// A NumPy array that takes over `m` (no copy): column-major strides, freed with the array.
template <class Scalar>
py::array take_matrix(Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>&& m) {
  using M = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;
  auto* owned = new M(std::move(m));
  py::capsule free_it(owned, [](void* p) { delete static_cast<M*>(p); });
  const auto s = static_cast<py::ssize_t>(sizeof(Scalar));
  return py::array_t<Scalar>({owned->rows(), owned->cols()}, {s, s * owned->rows()}, owned->data(),
                             free_it);
}

/// A 1-D NumPy array that takes over `v` (no copy).
template <class Scalar> py::array take_vector(std::vector<Scalar>&& v) {
  auto* owned = new std::vector<Scalar>(std::move(v));
  py::capsule free_it(owned, [](void* p) { delete static_cast<std::vector<Scalar>*>(p); });
  return py::array_t<Scalar>({static_cast<py::ssize_t>(owned->size())}, owned->data(), free_it);
}

/// A 1-D NumPy array that takes over `v` (no copy).
py::array take_vector(Eigen::VectorXd&& v) {
  auto* owned = new Eigen::VectorXd(std::move(v));
  py::capsule free_it(owned, [](void* p) { delete static_cast<Eigen::VectorXd*>(p); });
  return py::array_t<double>({static_cast<py::ssize_t>(owned->size())}, owned->data(), free_it);
}

/// Appends the values of `m` in C order (row by row).
void append_c_order(std::vector<double>& values, const Eigen::MatrixXd& m) {
  const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> rows = m;
  values.insert(values.end(), rows.data(), rows.data() + rows.size());
}

/// A 3-D float64 array n0 x n1 x n2 from C-order values.
py::array take_3d(std::vector<double>&& values, py::ssize_t n0, py::ssize_t n1, py::ssize_t n2) {
  auto* owned = new std::vector<double>(std::move(values));
  py::capsule free_it(owned, [](void* p) { delete static_cast<std::vector<double>*>(p); });
  const auto s = static_cast<py::ssize_t>(sizeof(double));
  return py::array_t<double>({n0, n1, n2}, {s * n1 * n2, s * n2, s}, owned->data(), free_it);
}

/// A str, bytes or os.PathLike as a path.
fs::path path_of(const py::handle& path) {
  return py::str(py::module_::import("os").attr("fsdecode")(path)).cast<std::string>();
}

// ---- Arrays in

/// The #channels x #samples matrix of `emg`: a float64 NumPy array (or anything NumPy makes
/// one of) of 2 dimensions, any strides (copied). \throws BadInput naming `name`.
Eigen::MatrixXd matrix_from_array(const py::handle& emg, const std::string& name) {
  const py::array a = py::array::ensure(emg);
  if (!a)
    throw BadInput(name + ": " + std::string(py::str(py::type::of(emg).attr("__name__"))) +
                   ": expected a NumPy array of float64, #channels x #samples");
  const py::dtype dt = a.dtype();
  if (dt.kind() != 'f' || dt.itemsize() != 8 || dt.byteorder() == '>')
    throw BadInput(name + ": dtype " + dt.attr("name").cast<std::string>() +
                   (dt.byteorder() == '>' ? " (big-endian)" : "") +
                   ": expected float64 (convert with numpy.asarray(" + name +
                   ", dtype=numpy.float64))");
  if (a.ndim() != 2) {
    std::string shape = "(";
    for (py::ssize_t d = 0; d < a.ndim(); ++d)
      shape += (d > 0 ? ", " : "") + std::to_string(a.shape(d));
    shape += a.ndim() == 1 ? ",)" : ")";
    throw BadInput(name + ": shape " + shape + ": expected 2 dimensions, #channels x #samples" +
                   (a.ndim() == 1 ? " (one channel: " + name + "[numpy.newaxis, :])" : ""));
  }
  const Eigen::Index rows = a.shape(0), cols = a.shape(1);
  Eigen::MatrixXd m(rows, cols);
  const auto* base = static_cast<const char*>(a.data());
  const py::ssize_t s0 = a.strides(0), s1 = a.strides(1);
  for (Eigen::Index j = 0; j < cols; ++j)
    for (Eigen::Index i = 0; i < rows; ++i)
      m(i, j) = *reinterpret_cast<const double*>(base + i * s0 + j * s1);
  return m;
}

// ---- Configuration

/// `value` as JSON (dicts with string keys, lists, tuples, str, bool, int, float, None and NumPy
/// scalars). \throws BadInput naming the key path `where`.
nlohmann::json to_json(const py::handle& value, const std::string& where) {
  if (value.is_none())
    return nullptr;
  if (py::isinstance<py::bool_>(value) ||
      py::isinstance(value, py::module_::import("numpy").attr("bool_")))
    return value.cast<bool>();
  if (py::isinstance<py::str>(value))
    return value.cast<std::string>();
  if (py::isinstance<py::int_>(value) ||
      py::isinstance(value, py::module_::import("numpy").attr("integer"))) {
    const py::int_ i(py::reinterpret_borrow<py::object>(value));
    if (i < py::int_(0))
      return i.cast<std::int64_t>();
    return i.cast<std::uint64_t>();
  }
  if (py::isinstance<py::float_>(value) ||
      py::isinstance(value, py::module_::import("numpy").attr("floating")))
    return value.cast<double>();
  if (py::isinstance<py::dict>(value)) {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [k, v] : value.cast<py::dict>()) {
      if (!py::isinstance<py::str>(k))
        throw BadInput(where + ": key " + std::string(py::repr(k)) + ": expected a string");
      const auto key = k.cast<std::string>();
      out[key] = to_json(v, where.empty() ? key : where + "." + key);
    }
    return out;
  }
  if (py::isinstance<py::list>(value) || py::isinstance<py::tuple>(value)) {
    nlohmann::json out = nlohmann::json::array();
    std::size_t i = 0;
    for (const auto& v : value)
      out.push_back(to_json(v, where + "[" + std::to_string(i++) + "]"));
    return out;
  }
  throw BadInput(where + " = " + std::string(py::repr(value)) +
                 ": expected a number, string, boolean, list or dict");
}

/// `value` (JSON) as Python objects.
py::object to_python(const nlohmann::json& value) {
  return py::module_::import("json").attr("loads")(value.dump());
}

/// A run configuration document with its name in messages and the folder its relative paths
/// start from.
struct Document {
  nlohmann::json json = nlohmann::json::object();
  std::string source = "config";
  fs::path base = ".";
};

/// The run configuration document as the command line reads it: `config` None (defaults), a
/// dict (the keys of the section `section` when `section_dict`, else a whole run configuration
/// with its sections, as resolved_config.json has them), or the path of a run configuration file
/// (as --config, e.g. a resolved_config.json); `overrides` (keyword arguments) are keys of
/// `section` that win over it, as the command-line options do.
/// \throws BadInput naming the key, IoError for a file that cannot be read.
Document config_document(const py::object& config, const py::dict& overrides,
                         const std::string& section, bool section_dict) {
  Document d;
  const bool is_path = py::isinstance<py::str>(config) ||
                       py::isinstance(config, py::module_::import("os").attr("PathLike"));
  if (is_path) {
    const fs::path path = path_of(config);
    d.json = parse_json(read_text_file(path), path.string());
    d.source = path.string();
    if (path.has_parent_path())
      d.base = path.parent_path();
  } else if (!config.is_none()) {
    if (!py::isinstance<py::dict>(config))
      throw BadInput("config: " + std::string(py::repr(py::type::of(config).attr("__name__"))) +
                     (section_dict ? ": expected a dict of the `" + section + "` keys"
                                   : std::string(": expected a dict of a run configuration")) +
                     " or a configuration file");
    if (section_dict)
      d.json[section] = to_json(config, section);
    else
      d.json = to_json(config, "");
  }
  if (!overrides.empty()) {
    nlohmann::json patch = nlohmann::json::object();
    patch[section] = to_json(overrides, section);
    if (d.json.is_object())
      d.json.merge_patch(patch);
    d.source += is_path ? " with the keyword arguments" : "";
  }
  return d;
}

/// The run configuration read from config_document(config, overrides, section, true) by the
/// command line's declared readers (read_run_config()); its `threads` applied.
app::RunConfig read_config(const py::object& config, const py::dict& overrides,
                           const std::string& section) {
  Document d = config_document(config, overrides, section, true);
  ConfigReader reader(std::move(d.json), d.source, d.base);
  app::RunConfig run = app::read_run_config(reader, std::nullopt);
  if (run.threads > 0)
    omp_set_num_threads(run.threads);
  return run;
}

/// Restores the calling thread's OpenMP thread count when the call ends: a configuration's
/// `threads` (or --threads) applies to its call only; set_threads() sets it for the calls that
/// follow.
struct ThreadsOfThisCall {
  int previous = omp_get_max_threads();
  ThreadsOfThisCall() = default;
  ThreadsOfThisCall(const ThreadsOfThisCall&) = delete;
  ThreadsOfThisCall& operator=(const ThreadsOfThisCall&) = delete;
  ~ThreadsOfThisCall() { omp_set_num_threads(previous); }
};

// ---- Progress

/// Thrown by a progress event on the calling thread, outside any OpenMP region (even a team of
/// one: an exception must not leave one), once Python has an exception to raise (Ctrl-C, or the
/// progress callable's): the work stops there and the exception is raised
/// (PythonProgress::rethrow()).
struct Interrupted : std::exception {
  [[nodiscard]] const char* what() const noexcept override { return "interrupted"; }
};

/// Forwards progress events to a Python callable `progress(task, done, total)` from any thread,
/// taking the GIL for the call, and looks for Ctrl-C (the interpreter's pending signals) at every
/// event of the calling thread when that is Python's main thread (without a callable, the other
/// events do not take the GIL). The first exception (KeyboardInterrupt, or one the callable raises)
/// is kept and later events dropped; when the event comes from the calling thread outside any
/// OpenMP region the work is stopped there (Interrupted), otherwise the exception waits for the
/// work to end: the library's threads are not unwound through Python. Copies of the returned
/// callback share this object without touching Python reference counts, so it may be copied while
/// the GIL is released.
struct PythonProgress {
  explicit PythonProgress(py::object progress)
      : callable(std::move(progress)), caller_is_main(on_main_thread()) {}

  /// True on Python's main thread (with the GIL).
  static bool on_main_thread() {
    const auto threading = py::module_::import("threading");
    return threading.attr("main_thread")().attr("ident").cast<unsigned long long>() ==
           threading.attr("get_ident")().cast<unsigned long long>();
  }

  py::object callable;
  std::thread::id caller = std::this_thread::get_id();
  /// Python's main thread called: only there does the interpreter see Ctrl-C.
  bool caller_is_main;
  std::mutex mutex;
  std::optional<py::error_already_set> error;

  ProgressCallback callback() {
    return [this](const ProgressEvent& e) {
      // Without a callable, only the calling thread of Python's main thread has something to
      // look for (the pending signals): other events leave the GIL alone.
      if (callable.is_none() && (!caller_is_main || std::this_thread::get_id() != caller))
        return;
      {
        const std::lock_guard<std::mutex> lock(mutex);
        if (!error) {
          py::gil_scoped_acquire gil;
          try {
            if (PyErr_CheckSignals() != 0)
              throw py::error_already_set();
            if (!callable.is_none())
              callable(e.task, e.done, e.total);
          } catch (py::error_already_set& err) {
            error.emplace(std::move(err));
          }
        }
        if (!error || std::this_thread::get_id() != caller || omp_get_level() > 0)
          return;
      }
      throw Interrupted();
    };
  }
  /// Raises the kept exception, if any.
  void rethrow() {
    if (error)
      throw std::move(*error);
  }
  /// Runs `work` with the GIL released and this object's callback; raises the kept exception,
  /// also when the work ended in an error of its own after it (a library that wraps the
  /// Interrupted it unwinds through, or fails while the interrupt waits).
  template <class Work> void run(Work&& work) {
    try {
      py::gil_scoped_release release;
      work(callback());
    } catch (const Interrupted&) {
    } catch (...) {
      if (!error)
        throw;
    }
    rethrow();
  }
};

// ---- Results out

py::dict decomposition_dict(inversion::Decomposition&& r, const nlohmann::json& resolved) {
  py::dict out;
  out["fs_Hz"] = r.fs_Hz;
  out["n_samples"] = r.n_samples;
  out["n_channels"] = r.n_channels;
  out["extension_factor"] = r.extension_factor;
  const auto n_units = static_cast<py::ssize_t>(r.units.size());
  py::list discharges, times, review;
  std::vector<double> sil, pnr, cov, cov_local, rate;
  std::vector<std::int64_t> n_discharges, doublets, pauses, found_at, first_offset;
  Eigen::MatrixXd sources(n_units, r.n_samples);
  for (py::ssize_t u = 0; u < n_units; ++u) {
    auto& unit = r.units[static_cast<std::size_t>(u)];
    std::vector<double> t(unit.discharges.size());
    for (std::size_t k = 0; k < t.size(); ++k)
      t[k] = static_cast<double>(unit.discharges[k]) / r.fs_Hz;
    n_discharges.push_back(static_cast<std::int64_t>(unit.discharges.size()));
    discharges.append(take_vector(std::move(unit.discharges)));
    times.append(take_vector(std::move(t)));
    review.append(py::cast(unit.review));
    sil.push_back(unit.sil);
    pnr.push_back(unit.pnr_dB);
    cov.push_back(unit.cov_isi);
    cov_local.push_back(unit.cov_isi_local);
    rate.push_back(unit.rate_pps);
    doublets.push_back(unit.n_doublets);
    pauses.push_back(unit.n_pauses);
    found_at.push_back(unit.found_at);
    first_offset.push_back(unit.muap_first_offset);
    sources.row(u) = unit.source.transpose();
  }
  out["discharges"] = discharges;
  out["discharge_times_s"] = times;
  out["n_discharges"] = take_vector(std::move(n_discharges));
  out["sil"] = take_vector(std::move(sil));
  out["pnr_dB"] = take_vector(std::move(pnr));
  out["cov_isi"] = take_vector(std::move(cov));
  out["cov_isi_local"] = take_vector(std::move(cov_local));
  out["rate_pps"] = take_vector(std::move(rate));
  out["n_doublets"] = take_vector(std::move(doublets));
  out["n_pauses"] = take_vector(std::move(pauses));
  out["found_at"] = take_vector(std::move(found_at));
  out["review"] = review;
  out["sources"] = take_matrix(std::move(sources));
  // Filters (#units x #channels x R) and MUAPs (#units x #channels x #window), C order.
  const py::ssize_t n_ch = r.n_channels;
  const py::ssize_t n_r = n_units > 0 ? r.units[0].filter.cols() : 0;
  const py::ssize_t n_w = n_units > 0 ? r.units[0].muap.cols() : 0;
  std::vector<double> filters, muaps;
  for (const auto& unit : r.units) {
    append_c_order(filters, unit.filter);
    append_c_order(muaps, unit.muap);
  }
  out["filters"] = take_3d(std::move(filters), n_units, n_ch, n_r);
  out["muaps"] = take_3d(std::move(muaps), n_units, n_ch, n_w);
  out["muap_first_offset"] = take_vector(std::move(first_offset));
  out["neural_drive_pps"] = take_vector(std::move(r.neural_drive_pps));
  py::dict channels;
  std::vector<double> rms;
  py::list rejected, detail;
  for (const auto& st : r.preprocessing.channels) {
    rms.push_back(st.rms);
    rejected.append(st.rejected);
    detail.append(st.detail);
  }
  channels["kept"] = take_vector(std::move(r.preprocessing.kept));
  channels["rms_V"] = take_vector(std::move(rms));
  channels["rejected"] = rejected;
  channels["detail"] = detail;
  channels["notes"] = py::cast(r.preprocessing.notes);
  out["channels"] = channels;
  out["filtered"] = take_matrix(std::move(r.preprocessing.filtered));
  out["stats"] = to_python(inversion::stats_json(r.stats));
  out["config"] = to_python(resolved);
  return out;
}

/// Every dataset and attribute of the HDF5 file under `group` into `out`: datasets by name (int64
/// or float64 arrays of their shape), groups as dicts, attributes as values.
void read_h5_group(const H5Reader& h5, const std::string& group, py::dict& out) {
  for (const auto& [key, value] : h5.attributes(group))
    out[py::str(key)] = std::visit([](const auto& v) { return py::cast(v); }, value);
  for (const auto& name : h5.list(group)) {
    const std::string path = group == "/" ? name : group + "/" + name;
    std::vector<std::size_t> shape;
    try {
      shape = h5.shape(path);
    } catch (const BadInput&) { // a group
      py::dict sub;
      read_h5_group(h5, path, sub);
      out[py::str(name)] = sub;
      continue;
    }
    py::dict attrs;
    for (const auto& [key, value] : h5.attributes(path))
      attrs[py::str(key)] = std::visit([](const auto& v) { return py::cast(v); }, value);
    py::array a;
    if (shape.size() <= 2 && shape.size() >= 1) {
      try {
        MatrixXi64 m = h5.read_int64(path);
        a = take_matrix(std::move(m));
      } catch (const BadInput&) {
        a = take_matrix(h5.read_double(path));
      }
      if (shape.size() == 1)
        a = a.attr("reshape")(static_cast<py::ssize_t>(shape[0]));
    } else {
      std::vector<py::ssize_t> dims(shape.begin(), shape.end());
      std::vector<double> values = h5.read_double_values(path);
      auto* owned = new std::vector<double>(std::move(values));
      py::capsule free_it(owned, [](void* p) { delete static_cast<std::vector<double>*>(p); });
      a = py::array_t<double>(dims, owned->data(), free_it);
    }
    out[py::str(name)] = a;
    if (!attrs.empty())
      out[py::str(name + ".attrs")] = attrs;
  }
}

} // namespace

} // namespace myotwin::python

PYBIND11_MODULE(_core, m) {
  using namespace myotwin;
  using namespace myotwin::python;
  m.doc() = "myotwin: the stage libraries with NumPy arrays in and out (docs/python.md)";
  m.attr("__version__") = app::version();
  set_log_level(LogLevel::warning);

  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p)
        std::rethrow_exception(p);
    } catch (const BadInput& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const IoError& e) {
      PyErr_SetString(PyExc_OSError, e.what());
    } catch (const Error& e) {
      PyErr_SetString(PyExc_RuntimeError, e.what());
    }
  });

  m.def(
      "config_defaults",
      [](std::optional<std::uint64_t> seed) {
        ConfigReader reader(nlohmann::json::object(), "default configuration");
        return to_python(app::read_run_config(reader, seed).resolved);
      },
      py::arg("seed") = py::none(),
      "The complete default run configuration as a dict (what `myotwin config defaults` "
      "prints); `seed` puts that seed in it.");

  m.def(
      "set_max_memory_GiB",
      [](std::optional<double> gib) {
        if (gib && !(*gib >= 0.001 && *gib <= 1e6))
          throw BadInput("set_max_memory_GiB: " + format_number(*gib) +
                         ": expected 0.001 to 1000000 [GiB], or None");
        set_memory_limit_bytes(gib ? *gib * 1073741824.0 : 0.0);
      },
      py::arg("GiB"),
      "The memory a call may use [GiB] (as --max-memory-GiB; None: what the machine has "
      "available, the default): calls whose estimate exceeds it raise ValueError before they "
      "allocate.");

  m.def(
      "set_log_level",
      [](const std::string& level) {
        if (level == "error")
          set_log_level(LogLevel::error);
        else if (level == "warning")
          set_log_level(LogLevel::warning);
        else if (level == "info")
          set_log_level(LogLevel::info);
        else if (level == "debug")
          set_log_level(LogLevel::debug);
        else
          throw BadInput("set_log_level: \"" + level +
                         "\": expected \"error\", \"warning\", \"info\" or \"debug\"");
      },
      py::arg("level"),
      "Messages of the library on standard error above `level` (\"error\", \"warning\" (the "
      "module's default), \"info\", \"debug\") are dropped.");

  m.def(
      "set_threads",
      [](int n) {
        if (n < 0 || n > app::max_threads)
          throw BadInput("set_threads: " + std::to_string(n) + ": expected 0 to " +
                         std::to_string(app::max_threads));
        omp_set_num_threads(n > 0 ? n : omp_get_num_procs());
      },
      py::arg("n"), "Threads of the parallel stages (0: all cores). Results do not depend on it.");

  m.def(
      "get_threads", [] { return omp_get_max_threads(); },
      "The threads of the parallel stages in the calls that follow (set_threads()).");

  m.def(
      "decompose",
      [](const py::object& emg, double fs_Hz, const py::object& config, const py::object& progress,
         const py::kwargs& kwargs) {
        const ThreadsOfThisCall threads;
        const app::RunConfig run = read_config(config, kwargs, "decompose");
        forward::EmgRecording recording;
        recording.source = "emg";
        recording.fs_Hz = fs_Hz;
        recording.emg = matrix_from_array(emg, "emg");
        forward::check_recording(recording);
        check_run_estimate(inversion::estimate_decompose(static_cast<double>(recording.emg.rows()),
                                                         static_cast<double>(recording.emg.cols()),
                                                         run.decompose, omp_get_max_threads()),
                           "decompose");
        PythonProgress reporter{progress};
        inversion::Decomposition result;
        reporter.run([&](const ProgressCallback& callback) {
          result = inversion::decompose(recording, run.decompose, callback);
        });
        return decomposition_dict(std::move(result), run.resolved["decompose"]);
      },
      py::arg("emg"), py::arg("fs_Hz"), py::arg("config") = py::none(),
      py::arg("progress") = py::none(),
      "Motor-unit decomposition of `emg` (#channels x #samples float64 array [V]) sampled at "
      "`fs_Hz` [Hz], as `myotwin decompose` does it. `config`: a dict of the keys of the "
      "configuration section `decompose`, or the path of a run configuration (e.g. a "
      "resolved_config.json); keyword arguments are `decompose` keys that win over it. "
      "`progress(task, done, total)` is called as the work advances. Returns a dict of NumPy "
      "arrays (docs/python.md). Raises ValueError for bad input (the command line's message).");

  m.def(
      "_run_stage",
      [](const std::vector<std::string>& args, const py::object& config, const std::string& section,
         const py::object& progress, const py::dict& overrides) {
        const ThreadsOfThisCall threads;
        const Document d = config_document(config, overrides, section, false);
        app::EmbeddedRun embedded;
        embedded.config = d.json;
        embedded.source = d.source;
        embedded.base = d.base;
        PythonProgress reporter{progress};
        reporter.run([&](const ProgressCallback& callback) {
          embedded.progress = callback;
          app::run_embedded_command(args, embedded);
        });
      },
      py::arg("args"), py::arg("config"), py::arg("section"), py::arg("progress"),
      py::arg("overrides"),
      "Runs the subcommand `args` (e.g. [\"mesh\", \"subject.json\", \"-o\", \"out\"]) in this "
      "process as the executable does, with the run configuration `config` (None, a dict of "
      "sections or a file) and `overrides` (keys of `section`), the GIL released and progress "
      "to `progress(task, done, total)`. The stage functions of the package call it.");

  m.def(
      "_check_emg",
      [](const py::object& emg, double fs_Hz) {
        forward::EmgRecording recording;
        recording.source = "emg";
        recording.fs_Hz = fs_Hz;
        recording.emg = matrix_from_array(emg, "emg");
        forward::check_recording(recording);
      },
      py::arg("emg"), py::arg("fs_Hz"),
      "Checks a recording array as decompose() does (dtype, shape, finite samples, the rate); "
      "invert() of an array calls it.");

  m.def(
      "_read_subject",
      [](const py::object& path) {
        const fs::path p = path_of(path);
        anatomy::Subject s;
        {
          py::gil_scoped_release release;
          s = anatomy::load_subject(p);
        }
        py::dict out;
        out["name"] = s.files.name;
        out["labels_file"] = s.files.labels.string();
        out["tissues_file"] = s.files.tissues.string();
        // Voxel (i, j, k) at labels[i + n_i * (j + n_j * k)]: a Fortran-ordered n_i x n_j x n_k
        // array over the same memory.
        const auto n = s.volume.size;
        auto* owned = new std::vector<std::int32_t>(std::move(s.volume.labels));
        py::capsule free_it(owned,
                            [](void* q) { delete static_cast<std::vector<std::int32_t>*>(q); });
        const auto e = static_cast<py::ssize_t>(sizeof(std::int32_t));
        out["labels"] = py::array_t<std::int32_t>(
            {n[0], n[1], n[2]}, {e, e * n[0], e * n[0] * n[1]}, owned->data(), free_it);
        out["spacing_m"] = take_vector(Eigen::VectorXd(s.volume.spacing_m));
        out["origin_m"] = take_vector(Eigen::VectorXd(s.volume.origin_m));
        out["direction"] = take_matrix(Eigen::MatrixXd(s.volume.direction));
        py::list tissues;
        for (const auto& t : s.tissues.tissues) {
          py::dict d;
          d["label"] = t.label;
          d["name"] = t.name;
          d["class"] = anatomy::to_string(t.tissue_class);
          d["sigma_l_S_per_m"] = t.sigma_l_S_per_m;
          d["sigma_t_S_per_m"] = t.sigma_t_S_per_m;
          d["muscle"] = t.muscle;
          d["n_motor_units"] = t.n_motor_units;
          tissues.append(d);
        }
        out["tissues"] = tissues;
        return out;
      },
      py::arg("path"),
      "Reads a subject (subject.json, its label volume and tissue table) as `myotwin anatomy` "
      "does; Subject.load() calls it.");

  m.def(
      "read_emg",
      [](const py::object& path, std::optional<double> fs_Hz, const std::string& dataset) {
        const fs::path p = path_of(path);
        forward::EmgReadOptions options;
        options.fs_Hz = fs_Hz;
        options.dataset = dataset;
        forward::EmgRecording r;
        {
          py::gil_scoped_release release;
          r = forward::read_emg(p, options);
        }
        py::dict out;
        out["emg"] = take_matrix(std::move(r.emg));
        out["fs_Hz"] = r.fs_Hz;
        out["grid_row_col"] = take_matrix(std::move(r.grid_row_col));
        out["position_m"] = take_matrix(std::move(r.position_m));
        out["channel_names"] = py::cast(r.channel_names);
        out["source"] = r.source.string();
        return out;
      },
      py::arg("path"), py::arg("fs_Hz") = py::none(), py::arg("dataset") = "",
      "Reads a recording (emg.h5, .mat in the DEMUSE / MUedit / openhdemg layouts, CSV) as "
      "`myotwin decompose` does: a dict with `emg` (#channels x #samples), `fs_Hz`, "
      "`grid_row_col` (#channels x 2, or 0 x 0), `position_m` (#channels x 3, or 0 x 0), "
      "`channel_names`. `fs_Hz`: the rate of a CSV without one (else a check).");

  m.def(
      "read_h5",
      [](const py::object& path) {
        const fs::path p = path_of(path);
        const H5Reader h5(p);
        py::dict out;
        read_h5_group(h5, "/", out);
        return out;
      },
      py::arg("path"),
      "Every dataset of an HDF5 file of the project as a nested dict of NumPy arrays (groups as "
      "dicts, attributes as values, a dataset's attributes under `<name>.attrs`).");

  m.def(
      "read_mesh",
      [](const py::object& path) {
        const fs::path p = path_of(path);
        meshing::TetMesh mesh;
        {
          py::gil_scoped_release release;
          mesh = meshing::read_mesh_vtu(p);
        }
        py::dict out;
        out["nodes_m"] = take_matrix(Eigen::MatrixXd(mesh.nodes_m));
        out["tets"] = take_matrix(MatrixXi64(mesh.tets.cast<std::int64_t>()));
        out["labels"] = take_vector(std::move(mesh.labels));
        out["fibre_direction"] = take_matrix(Eigen::MatrixXd(mesh.fibre_direction));
        return out;
      },
      py::arg("path"),
      "Reads a tet mesh (mesh.vtu, as `myotwin mesh` writes and the lead-field stage reads it): a "
      "dict with `nodes_m` (#nodes x 3 [m]), `tets` (#tets x 4 node indices, int64, positive "
      "volume), `labels` (#tets tissue labels, int32) and `fibre_direction` (#tets x 3 unit "
      "vectors, zero outside muscle).");

  m.def(
      "read_spike_trains",
      [](const py::object& path) {
        const fs::path p = path_of(path);
        inversion::SpikeTrains t = inversion::read_spike_trains(p);
        py::dict out;
        out["fs_Hz"] = t.fs_Hz;
        out["n_samples"] = t.n_samples;
        out["unit_id"] = take_vector(std::move(t.unit_id));
        py::list discharges;
        for (auto& s : t.samples)
          discharges.append(take_vector(std::move(s)));
        out["discharges"] = discharges;
        return out;
      },
      py::arg("path"),
      "Discharge trains as `myotwin score` reads them (emg.h5 truth, decomposition.h5, a .mat "
      "with MUPulses): a dict with `fs_Hz`, `n_samples` (0 when unknown), `unit_id` and "
      "`discharges` (a list of int64 arrays of 0-based sample indices).");

  m.def(
      "score",
      [](const py::object& decomposed, const py::object& truth, const py::object& config,
         const py::kwargs& kwargs) {
        const app::RunConfig run = read_config(config, kwargs, "score");
        const auto trains = [](const py::object& o, const std::string& name) {
          inversion::SpikeTrains t;
          t.source = name;
          if (!py::isinstance<py::dict>(o))
            throw BadInput(name + ": expected a dict with `fs_Hz` and `discharges` (as decompose() "
                                  "and read_spike_trains() return)");
          const auto d = o.cast<py::dict>();
          if (!d.contains("fs_Hz") || !d.contains("discharges"))
            throw BadInput(name + ": expected the keys `fs_Hz` and `discharges`");
          t.fs_Hz = d["fs_Hz"].cast<double>();
          for (const auto& train : d["discharges"]) {
            const py::array a = py::array::ensure(train);
            if (!a || a.ndim() != 1 || a.dtype().kind() != 'i')
              throw BadInput(name + ": discharges: expected 1-D integer arrays of sample indices");
            t.samples.push_back(py::array_t<std::int64_t, py::array::forcecast>(a)
                                    .cast<std::vector<std::int64_t>>());
          }
          for (std::size_t k = 0; k < t.samples.size(); ++k)
            t.unit_id.push_back(static_cast<std::int64_t>(k));
          if (d.contains("unit_id"))
            t.unit_id =
                py::array_t<std::int64_t, py::array::forcecast>(py::array::ensure(d["unit_id"]))
                    .cast<std::vector<std::int64_t>>();
          return t;
        };
        const inversion::SpikeTrains a = trains(decomposed, "decomposed");
        const inversion::SpikeTrains b = trains(truth, "truth");
        inversion::ScoreResult r = inversion::score(a, b, run.score);
        nlohmann::json json = inversion::to_json(r, a, b);
        json["parameters"] = run.resolved["score"]; // as score.json has them
        auto out = to_python(json).cast<py::dict>();
        out["roa"] = take_matrix(std::move(r.roa));
        return out;
      },
      py::arg("decomposed"), py::arg("truth"), py::arg("config") = py::none(),
      "Rate of agreement of decomposed discharge trains against true ones, as `myotwin score`: "
      "each a dict with `fs_Hz` and `discharges` (what decompose(), read_spike_trains() and "
      "read_decomposition() return). `config`: a dict of the section `score` or a configuration "
      "file; keyword arguments are `score` keys. Returns score.json's content with `roa` "
      "(#decomposed x #truth) as an array.");
}
