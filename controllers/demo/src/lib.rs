//! Example controller: demo (work in progress).
