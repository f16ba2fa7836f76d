#pragma once
/// \file error.hpp
/// The error hierarchy of myotwin. Every message names the file or config key, the value found
/// and what was expected, e.g. `subject.json: tissues[3].sigma_l_S_per_m = -0.5: must be > 0`.
/// The library never exits; `main` maps errors to exit codes with exit_code().

#include <stdexcept>
#include <string>

namespace myotwin {

/// Process exit codes used by the `myotwin` executable.
enum class ExitCode : int { ok = 0, runtime = 1, bad_input = 2 };

/// Base of all myotwin errors: a runtime failure (exit code 1) unless a subclass says otherwise.
class Error : public std::runtime_error {
public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
  /// The process exit code this error maps to.
  [[nodiscard]] virtual ExitCode exit_code() const noexcept { return ExitCode::runtime; }
};

/// Bad input: a file, config key, value, geometry or signal that is not what was expected
/// (exit code 2).
class BadInput : public Error {
public:
  using Error::Error;
  [[nodiscard]] ExitCode exit_code() const noexcept override { return ExitCode::bad_input; }
};

/// A file or folder named by the user that cannot be read or written (exit code 2).
class IoError : public Error {
public:
  using Error::Error;
  [[nodiscard]] ExitCode exit_code() const noexcept override { return ExitCode::bad_input; }
};

/// A numerical failure: a solver that did not converge, a singular matrix (exit code 1).
class NumericalError : public Error {
public:
  using Error::Error;
};

/// A number as it should appear in an error message: up to 10 significant digits, no
/// trailing zeros (`-0.5`, `1e-08`, `2048`).
std::string format_number(double value);

} // namespace myotwin
