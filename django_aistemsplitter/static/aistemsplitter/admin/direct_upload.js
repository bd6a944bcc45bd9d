/* The split job add form's direct upload: the chosen file goes straight to where
 * it is kept, not through the admin's own request.
 *
 * On submit, when a file is chosen: ask the admin for an upload ticket
 * (POST {filename, size, content_type}, answered like the API's
 * POST /splits/uploads/), send the file where the ticket says with
 * XMLHttpRequest (a <progress> bar follows it), then clear the file input, put
 * the ticket's id in the hidden "upload" field and submit the form: Django
 * receives a few hundred bytes. On failure the error is shown and the file stays
 * chosen, so submitting again retries. Without scripts (or without fetch/XHR)
 * nothing here runs and the form posts the file as it always did.
 *
 * Ticket: {id, url, method, headers, fields, file_field, ...}. method PUT: the
 * body is the file, sent with headers. method POST: multipart/form-data of
 * fields (in order) then the file as the part named file_field.
 *
 * The form is told what happens by events (for pages and tests that follow it):
 * "aiss:upload-progress" {loaded, total}, "aiss:upload-done" {id},
 * "aiss:upload-failed" {reason}.
 */
(function () {
  "use strict";

  function supported() {
    return !!(window.fetch && window.XMLHttpRequest && window.FormData && window.JSON &&
      window.Promise && window.XMLHttpRequest.prototype && "upload" in new XMLHttpRequest());
  }

  function fill(template, values) {
    return String(template || "").replace(/%\((\w+)\)s/g, function (all, key) {
      return Object.prototype.hasOwnProperty.call(values, key) ? String(values[key]) : all;
    });
  }

  function megabytes(bytes) {
    return (bytes / 1e6).toFixed(1);
  }

  function sameOrigin(url) {
    var a = document.createElement("a");
    a.href = url;
    return a.protocol === window.location.protocol && a.host === window.location.host;
  }

  function announce(form, name, detail) {
    var event;
    try {
      event = new CustomEvent(name, { detail: detail });
    } catch (e) {
      return;
    }
    form.dispatchEvent(event);
  }

  // The admin's stylesheet gives .errornote a display of its own, which beats the
  // hidden attribute: show and hide with the style instead.
  function show(element, shown) {
    element.style.display = shown ? "" : "none";
  }

  function setUp(input) {
    var form = input.form;
    var ticketUrl = input.getAttribute("data-aiss-ticket-url");
    var hidden = form ? form.querySelector("input[name=upload]") : null;
    if (!form || !ticketUrl || !hidden || !supported()) {
      return;
    }
    var csrf = form.querySelector("input[name=csrfmiddlewaretoken]");
    var say = function (key, values) {
      return fill(input.getAttribute("data-aiss-msg-" + key), values || {});
    };

    var box = document.createElement("div");
    box.className = "aiss-direct-upload";
    show(box, false);
    var bar = document.createElement("progress");
    bar.setAttribute("data-aiss-upload-progress", "");
    bar.max = 1;
    bar.value = 0;
    var note = document.createElement("span");
    note.setAttribute("data-aiss-upload-note", "");
    note.setAttribute("role", "status");
    note.setAttribute("aria-live", "polite");
    note.style.marginLeft = "0.5em";
    var error = document.createElement("p");
    error.className = "errornote";
    error.setAttribute("data-aiss-upload-error", "");
    show(error, false);
    box.appendChild(bar);
    box.appendChild(note);
    // Under the field (and its help text) in the admin's layout; right after the
    // input anywhere else.
    var row = input.closest ? input.closest(".form-row") : null;
    var place = row && row.firstElementChild ? row.firstElementChild : null;
    if (place) {
      place.appendChild(box);
      place.appendChild(error);
    } else {
      input.parentNode.insertBefore(box, input.nextSibling);
      box.parentNode.insertBefore(error, box.nextSibling);
    }

    var busy = false;
    var submitting = false;

    function buttons(disabled) {
      var all = form.querySelectorAll("input[type=submit], button[type=submit], button:not([type])");
      for (var i = 0; i < all.length; i++) {
        all[i].disabled = disabled;
      }
    }

    function askForTicket(file) {
      var headers = { "Content-Type": "application/json", Accept: "application/json" };
      if (csrf) {
        headers["X-CSRFToken"] = csrf.value;
      }
      return fetch(ticketUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: headers,
        body: JSON.stringify({ filename: file.name, size: file.size, content_type: file.type })
      }).then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (data) {
          if (!response.ok || !data.id) {
            throw new Error(data.error || "HTTP " + response.status);
          }
          return data;
        });
      });
    }

    function send(ticket, file) {
      return new Promise(function (resolve, reject) {
        var xhr = new XMLHttpRequest();
        var method = String(ticket.method || "PUT").toUpperCase();
        xhr.open(method, ticket.url, true);
        var headers = ticket.headers || {};
        Object.keys(headers).forEach(function (name) {
          try {
            xhr.setRequestHeader(name, headers[name]);
          } catch (e) {
            /* a header the browser sets itself (Content-Length): it sends the right one */
          }
        });
        if (csrf && sameOrigin(ticket.url)) {
          xhr.setRequestHeader("X-CSRFToken", csrf.value);
        }
        xhr.upload.onprogress = function (event) {
          var total = event.lengthComputable ? event.total : file.size;
          bar.max = total || 1;
          bar.value = Math.min(event.loaded, bar.max);
          note.textContent = say("uploading", {
            done: megabytes(Math.min(event.loaded, total)),
            total: megabytes(total)
          });
          announce(form, "aiss:upload-progress", { loaded: event.loaded, total: total });
        };
        xhr.onload = function () {
          if (xhr.status >= 200 && xhr.status < 300) {
            resolve(ticket);
            return;
          }
          var reason = "HTTP " + xhr.status;
          var text = (xhr.responseText || "").replace(/<[^>]*>/g, " ").replace(/\s+/g, " ").trim();
          if (text) {
            reason += " " + text.slice(0, 200);
          }
          reject(new Error(reason));
        };
        xhr.onerror = function () { reject(new Error(say("network"))); };
        xhr.onabort = xhr.onerror;
        if (method === "POST") {
          var body = new FormData();
          var fields = ticket.fields || {};
          Object.keys(fields).forEach(function (name) { body.append(name, fields[name]); });
          body.append(ticket.file_field || "file", file, file.name);
          xhr.send(body);
        } else {
          xhr.send(file);
        }
      });
    }

    function finish(ticket, submitter) {
      hidden.value = ticket.id;
      input.value = "";
      note.textContent = say("uploaded");
      bar.value = bar.max;
      if (submitter && submitter.name) {
        // form.submit() sends no button: keep "Save and add another" meaning that.
        var pressed = document.createElement("input");
        pressed.type = "hidden";
        pressed.name = submitter.name;
        pressed.value = submitter.value;
        form.appendChild(pressed);
      }
      announce(form, "aiss:upload-done", { id: ticket.id });
      submitting = true;
      HTMLFormElement.prototype.submit.call(form);
    }

    function fail(reason, submitter) {
      busy = false;
      buttons(false);
      show(box, false);
      error.textContent = say("failed", { reason: String(reason).replace(/[.\s]+$/, "") });
      show(error, true);
      announce(form, "aiss:upload-failed", { reason: reason });
      if (submitter && submitter.focus) {
        submitter.focus();
      }
    }

    form.addEventListener("submit", function (event) {
      if (submitting || !input.files || !input.files.length) {
        return; // no file chosen: a URL, or a ticket already uploaded; post as usual
      }
      event.preventDefault();
      if (busy) {
        return;
      }
      busy = true;
      var file = input.files[0];
      var submitter = event.submitter || null;
      buttons(true);
      show(error, false);
      show(box, true);
      bar.max = file.size || 1;
      bar.value = 0;
      note.textContent = say("ticket");
      askForTicket(file)
        .then(function (ticket) { return send(ticket, file); })
        .then(function (ticket) { finish(ticket, submitter); })
        .catch(function (problem) { fail(problem && problem.message ? problem.message : String(problem), submitter); });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var inputs = document.querySelectorAll("input[type=file][data-aiss-ticket-url]");
    for (var i = 0; i < inputs.length; i++) {
      setUp(inputs[i]);
    }
  });
})();
