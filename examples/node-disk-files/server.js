// Files kept on the instance's local disk, in Node.js with no npm package: wrong on purpose.
// POST /files (multipart field "file") answers 201 with Location: /files/<id>; GET /files/<id> sends the bytes back.
const crypto = require("crypto");
const fs = require("fs");
const http = require("http");
const path = require("path");

const folder = path.join(process.cwd(), "files"); // this instance's disk: another instance has its own
fs.mkdirSync(folder, { recursive: true });

function firstPart(body, contentType) {
  const boundary = /boundary=(?:"([^"]+)"|([^;]+))/.exec(contentType || "");
  if (!boundary) return null;
  const delimiter = Buffer.from("--" + (boundary[1] || boundary[2]));
  const start = body.indexOf("\r\n\r\n", body.indexOf(delimiter)) + 4;
  const end = body.indexOf(Buffer.concat([Buffer.from("\r\n"), delimiter]), start);
  return start >= 4 && end >= start ? body.subarray(start, end) : null;
}

http.createServer((request, response) => {
  const chunks = [];
  request.on("data", (chunk) => chunks.push(chunk));
  request.on("end", () => {
    const match = /^\/files\/([0-9a-f]{32})$/.exec(request.url);
    if (request.method === "GET" && request.url === "/") {
      response.end("ok\n");
    } else if (request.method === "POST" && request.url === "/files") {
      const file = firstPart(Buffer.concat(chunks), request.headers["content-type"]);
      if (!file) { response.writeHead(400); response.end("send a multipart file\n"); return; }
      const id = crypto.randomBytes(16).toString("hex");
      fs.writeFileSync(path.join(folder, id), file);
      response.writeHead(201, { "Location": "/files/" + id, "Content-Type": "application/json" });
      response.end(JSON.stringify({ id: id, bytes: file.length }));
    } else if (request.method === "GET" && match && fs.existsSync(path.join(folder, match[1]))) {
      response.writeHead(200, { "Content-Type": "application/octet-stream" });
      response.end(fs.readFileSync(path.join(folder, match[1])));
    } else {
      response.writeHead(404); response.end("not found\n");
    }
  });
}).listen(Number(process.argv[2]), "127.0.0.1");
