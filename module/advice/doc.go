// Package advice reads what a user's requests did (a usage.Report) beside
// the rights the user holds and says which rights went unused, with
// narrower rights to apply through the ordinary user API: least privilege
// from evidence rather than guesswork.
package advice
