"""Face detection, encoding and image loading shared by the terminal and server-side enrolment."""
