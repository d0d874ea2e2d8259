// Resident identity card numbers (GB 11643-1999): 17 digits and a check character.
//
// The check character is sum(digit_i * weight_i) mod 11 mapped through "10X98765432";
// the 7th-14th characters are the birth date. Used by the clerk's case panel so that a
// typo is caught while the citizen is still on the call.

const WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK = "10X98765432";

/** "ok", or why not: "length", "characters", "birth_date", "check_digit". */
export function checkIdNumber(raw) {
  const value = String(raw || "").trim().toUpperCase();
  if (value.length !== 18) return "length";
  if (!/^\d{17}[\dX]$/.test(value)) return "characters";
  const year = Number(value.slice(6, 10)), month = Number(value.slice(10, 12)), day = Number(value.slice(12, 14));
  const date = new Date(Date.UTC(year, month - 1, day));
  if (year < 1900 || date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day || date > new Date()) return "birth_date";
  let sum = 0;
  for (let i = 0; i < 17; i++) sum += Number(value[i]) * WEIGHTS[i];
  return CHECK[sum % 11] === value[17] ? "ok" : "check_digit";
}

/** The check character a 17-digit prefix needs (for tests and for hints). */
export function checkCharacter(prefix17) {
  let sum = 0;
  for (let i = 0; i < 17; i++) sum += Number(prefix17[i]) * WEIGHTS[i];
  return CHECK[sum % 11];
}
