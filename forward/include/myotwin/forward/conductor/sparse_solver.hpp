#pragma once
/// \file sparse_solver.hpp
/// Solves K x = b for a symmetric positive definite sparse K (a grounded stiffness matrix) and
/// many right-hand sides: once-factorised CHOLMOD supernodal Cholesky (direct), or, when the
/// factor would not fit a memory budget, preconditioned conjugate gradients (iterative).
///
/// Direct: cholmod_l_analyze (CHOLMOD's default ordering choice: AMD, or METIS when it gives a
/// smaller factor), cholmod_l_factorize once, then cholmod_l_solve on blocks of columns (BLAS-3
/// triangular solves). Blocks run one after the other: the serial OpenBLAS that CHOLMOD calls is
/// not guaranteed to be safe under concurrent calls. Block boundaries depend only on the column
/// index, so results do not depend on the thread count.
/// Iterative: preconditioned conjugate gradients, the columns solved in parallel (OpenMP), each
/// column's arithmetic serial (Eigen's own threading is switched off), so each column is the same
/// at any thread count. Preconditioner: Eigen's incomplete Cholesky (Lin-More, natural
/// ordering; default) or Jacobi. Measured (one thread per right-hand side, relative tolerance
/// 1e-10): on a 36^3-cube box (5.1e4 nodes, 2.8e5 tets) of homogeneous muscle with oblique
/// fibres (0.5 / 0.1 S/m), incomplete Cholesky took 130 iterations and 0.24 s per right-hand
/// side, Jacobi 499 and 0.34 s; on boxes of 3-9e4 nodes with a skin and fat layer over muscle,
/// Jacobi was 15-30 % faster (incomplete Cholesky needs ~2.8x fewer iterations but Eigen's
/// triangular solves make each 3x dearer). Incomplete Cholesky with AMD ordering was slower than
/// both. The direct method was 35-50x faster per right-hand side on all of these.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <Eigen/Core>
#include <Eigen/SparseCore>

#include "myotwin/core/progress.hpp"

namespace myotwin::forward {

/// How SpdSolver solves.
enum class SolverMethod {
  automatic, ///< direct unless the estimated factor exceeds the memory budget
  direct,    ///< CHOLMOD supernodal Cholesky
  iterative  ///< preconditioned conjugate gradients
};

/// "automatic", "direct", "iterative".
std::string to_string(SolverMethod method);
/// Parses a method name. \throws BadInput naming the value and the allowed names.
SolverMethod solver_method_from_string(const std::string& name);

/// Preconditioner of the iterative method.
enum class Preconditioner {
  jacobi,             ///< diagonal scaling
  incomplete_cholesky ///< Eigen::IncompleteCholesky, natural ordering
};

/// "jacobi", "incomplete_cholesky".
std::string to_string(Preconditioner preconditioner);
/// Parses a preconditioner name. \throws BadInput naming the value and the allowed names.
Preconditioner preconditioner_from_string(const std::string& name);

struct SolverReport;

/// Options of SpdSolver.
struct SolverParams {
  /// Method (default automatic).
  SolverMethod method = SolverMethod::automatic;
  /// Memory the Cholesky factor may take [bytes] (default 8 GiB): with `automatic`, a factor
  /// estimated (by cholmod_analyze) above this uses the iterative method instead.
  double memory_budget_bytes = 8.0 * 1024.0 * 1024.0 * 1024.0;
  /// CG stops when ||b - K x|| <= cg_relative_tolerance * ||b|| (default 1e-10: the lead fields
  /// then agreed with the direct solve to <= 1e-9 of their maximum on meshes of 10^4-10^5 nodes,
  /// with a wide margin for the 1e-6 required; 1e-8 saves ~10 % of the iterations).
  double cg_relative_tolerance = 1e-10;
  /// CG preconditioner (default incomplete_cholesky).
  Preconditioner preconditioner = Preconditioner::incomplete_cholesky;
  /// CG iteration limit per right-hand side (default 10000).
  std::int64_t cg_max_iterations = 10000;
  /// Columns per cholmod_solve call (default 32).
  std::int64_t block_columns = 32;
  /// Called with the report of CHOLMOD's symbolic analysis (the factor's size and flop count
  /// known) when the direct method has been chosen, before the numerical factorisation
  /// allocates the factor; may throw to stop (e.g. check_memory_estimate()). Not called for
  /// the iterative method.
  std::function<void(const SolverReport&)> before_factorising;
};

/// What a solver did and used.
struct SolverReport {
  SolverMethod method = SolverMethod::direct; ///< the method in use (direct or iterative)
  std::int64_t n_rows = 0;                    ///< size of K
  std::int64_t matrix_nnz = 0;                ///< stored entries of K (both triangles)
  double estimated_factor_bytes = 0.0;        ///< factor memory estimated by the analysis [bytes]
                                              ///< (0 if not analysed)
  std::int64_t factor_nnz = 0; ///< entries of the Cholesky factor or the preconditioner
  double factor_bytes = 0.0;   ///< memory [bytes] of the factor (direct), or of the matrix copy,
                               ///< the preconditioner and one column's CG vectors (iterative)
  double flops = 0.0;          ///< factorisation flop count (direct)
  double rcond_estimate = 0.0; ///< CHOLMOD's min(L_ii)^2 / max(L_ii)^2 (direct; 0 otherwise)
  std::string ordering;        ///< fill-reducing ordering used
  double analyse_s = 0.0;      ///< symbolic analysis time [s]
  double factor_s = 0.0;       ///< numerical factorisation / preconditioner time [s]
};

/// Per right-hand side result of the iterative method.
struct ColumnStats {
  std::int64_t iterations = 0;    ///< CG iterations (0 for the direct method)
  double relative_residual = 0.0; ///< ||b - K x|| / ||b|| at exit (direct: not computed, 0)
};

/// A factorised (or preconditioned) symmetric positive definite matrix, reused for any number
/// of right-hand sides. Not copyable; solve() is not re-entrant (one call at a time).
class SpdSolver {
public:
  /// Analyses and factorises `matrix` (n x n, symmetric, positive definite, both triangles
  /// stored; only the upper triangle is read by the direct method).
  /// Calls Eigen::setNbThreads(1).
  /// \throws BadInput for a non-square matrix or invalid params; NumericalError if the matrix
  /// is not positive definite (naming the failing column) or singular to working precision
  /// (reciprocal condition estimate <= 1e-13): usually an ungrounded or disconnected mesh; or if
  /// the factorisation runs out of memory.
  explicit SpdSolver(const Eigen::SparseMatrix<double>& matrix, const SolverParams& params = {});
  ~SpdSolver();
  SpdSolver(const SpdSolver&) = delete;
  SpdSolver& operator=(const SpdSolver&) = delete;

  /// Solves K X = B. `rhs`: n x #columns. Returns n x #columns. `progress` gets columns done
  /// of #columns under `task`; `stats`, if not null, receives one ColumnStats per column.
  /// \throws BadInput for a row count other than n; NumericalError when CG does not converge,
  /// naming the right-hand side (column) index, the iterations and the residual reached.
  Eigen::MatrixXd solve(const Eigen::Ref<const Eigen::MatrixXd>& rhs,
                        const ProgressCallback& progress = {}, const std::string& task = "solve",
                        std::vector<ColumnStats>* stats = nullptr);

  /// Method, sizes, memory and times.
  [[nodiscard]] const SolverReport& report() const;
  /// n.
  [[nodiscard]] Eigen::Index size() const;

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace myotwin::forward
