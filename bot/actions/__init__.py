"""Action tasks: atomic tasks that act on another system (send an email, post a reply,
send an invitation) once a person approves them."""
