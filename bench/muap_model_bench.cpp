// Benchmark of the parametric MUAP model (forward/muap_model.hpp) on a subject's FEM lead
// fields: precomputation time and memory, time per MUAP, and the model's MUAP of each anatomy
// unit (from its territory, size and CV) against the direct MUAP of its own fibres.
//
// Usage: bench_muap_model SUBJECT.json OUT [MUSCLE] [N_UNITS]
//   OUT holds the outputs of `myotwin anatomy`, `mesh` and `leadfield` for the default config.

#include <chrono>
#include <cmath>
#include <iomanip>
#include <iostream>
#include <string>

#include "myotwin/core/config.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/forward/source/muap_model.hpp"
#include "myotwin/forward/subject_model.hpp"

namespace mf = myotwin::forward;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

} // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: bench_muap_model SUBJECT.json OUT [MUSCLE] [N_UNITS]\n";
    return 2;
  }
  try {
    const std::string muscle_name = argc > 3 ? argv[3] : "ED";
    const int n_units = argc > 4 ? std::stoi(argv[4]) : 20;
    auto t0 = std::chrono::steady_clock::now();
    myotwin::ConfigReader defaults(nlohmann::json::object(), "default configuration");
    auto electrodes_section = defaults.section("electrodes");
    const mf::ElectrodeConfig electrodes = mf::read_electrode_config(electrodes_section);
    const std::filesystem::path out = argv[2];
    mf::SubjectModelFiles files{argv[1], out / "anatomy", out / "mesh" / "mesh.vtu",
                                out / "forward" / "leadfields.h5", ""};
    const auto model = mf::load_subject_forward_model(files, electrodes, -1);
    const double load_s = seconds_since(t0);
    const myotwin::anatomy::MuscleModel* muscle = nullptr;
    for (const auto& m : model->anatomy.muscles)
      if (m.geometry.name == muscle_name)
        muscle = &m;
    if (muscle == nullptr)
      throw myotwin::BadInput("no muscle " + muscle_name + " in " + std::string(argv[2]));
    const auto n_ch = model->lead_fields.lead_fields_V_per_A.cols();
    mf::MuapModelParams params;
    t0 = std::chrono::steady_clock::now();
    const mf::MuapModel m(muscle->fibres, muscle->pool, model->transfer, n_ch, params);
    const double build_s = seconds_since(t0);
    const double memory_MiB = static_cast<double>(m.n_cells()) * params.n_end_plate_shifts *
                              static_cast<double>(n_ch) * 8.0 / (1024.0 * 1024.0);
    std::cout << "muscle " << muscle_name << ": " << muscle->fibres.fibres.size()
              << " model fibres, " << m.n_cells() << " cells of " << params.cell_size_m * 1e3
              << " mm, " << params.n_end_plate_shifts << " end-plate shifts, " << n_ch
              << " channels; load " << std::setprecision(3) << load_s << " s, precompute "
              << build_s << " s\n";
    std::cout << "  (per model sample and cell x shift x channel: " << memory_MiB
              << " MiB; x model samples in total)\n\n";
    std::cout << " unit  fibres     corr   rel.err  model_ms  direct_ms\n";
    mf::MuapParams direct;
    direct.fs_Hz = params.fs_Hz;
    double corr_sum = 0.0, err_sum = 0.0, model_ms_sum = 0.0, direct_ms_sum = 0.0;
    int count = 0;
    const int n = std::min<int>(n_units, static_cast<int>(muscle->pool.units.size()));
    for (int k = 0; k < n; ++k) {
      // Spread over the pool: small to large units.
      const auto u = static_cast<std::size_t>(std::llround(
          static_cast<double>(k) * (muscle->pool.units.size() - 1) / std::max(1, n - 1)));
      if (muscle->pool.units[u].fibres.empty())
        continue;
      const auto theta = m.parameters_of(muscle->fibres, muscle->pool, u);
      t0 = std::chrono::steady_clock::now();
      const Eigen::MatrixXd a = m.muap(theta);
      const double model_ms = 1e3 * seconds_since(t0);
      t0 = std::chrono::steady_clock::now();
      const Eigen::MatrixXd b =
          mf::unit_muap(muscle->fibres, muscle->pool, u, n_ch, model->transfer, direct);
      const double direct_ms = 1e3 * seconds_since(t0);
      const Eigen::Index rows = std::min(a.rows(), b.rows());
      const double corr = (a.topRows(rows).array() * b.topRows(rows).array()).sum() /
                          (a.topRows(rows).norm() * b.topRows(rows).norm());
      const double err = (a.topRows(rows) - b.topRows(rows)).norm() / b.topRows(rows).norm();
      std::cout << std::setw(5) << u << std::setw(8) << std::llround(theta.n_fibres) << std::fixed
                << std::setprecision(4) << std::setw(9) << corr << std::setw(10) << err
                << std::setprecision(2) << std::setw(10) << model_ms << std::setw(11) << direct_ms
                << "\n";
      std::cout.unsetf(std::ios::fixed);
      corr_sum += corr;
      err_sum += err;
      model_ms_sum += model_ms;
      direct_ms_sum += direct_ms;
      ++count;
    }
    std::cout << "\nmean over " << count << " units: correlation " << corr_sum / count
              << ", relative RMS error " << err_sum / count << ", model " << model_ms_sum / count
              << " ms vs direct " << direct_ms_sum / count << " ms per MUAP\n";
    return 0;
  } catch (const myotwin::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return static_cast<int>(e.exit_code());
  }
}
