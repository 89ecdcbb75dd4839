// Reads the header, jobdict and jobenvs of a stored job pack (master-api.md 6.1) with
// two Range requests on /disco/ctrl/parameters, so a large job home is never fetched.
"use strict";
const JobPack = (() => {
  async function range(name, start, end) {
    const resp = await Disco.request(Disco.ctrl("parameters", { name }), {
      headers: { Range: `bytes=${start}-${end}` },
    });
    const total = /\/(\d+)$/.exec(resp.headers.get("Content-Range") || "");
    const data = new Uint8Array(await resp.arrayBuffer());
    return { data, total: total ? Number(total[1]) : data.length };
  }

  async function read(name) {
    const head = await range(name, 0, 127);
    const view = new DataView(head.data.buffer, head.data.byteOffset, head.data.byteLength);
    const magic = view.getUint32(0);
    if (magic >>> 16 !== 0xd5c0) throw new Error("not a job pack");
    const [dictAt, envsAt, homeAt, dataAt] = [4, 8, 12, 16].map((o) => view.getUint32(o));
    const body = await range(name, dictAt, homeAt - 1);
    const text = new TextDecoder();
    const jobdict = JSON.parse(text.decode(body.data.subarray(0, envsAt - dictAt)));
    const jobenvs = JSON.parse(text.decode(body.data.subarray(envsAt - dictAt)) || "{}");
    return {
      version: magic & 0xffff,
      jobdict,
      jobenvs,
      sizes: {
        jobdict: envsAt - dictAt,
        jobenvs: homeAt - envsAt,
        jobhome: dataAt - homeAt,
        jobdata: head.total - dataAt,
        total: head.total,
      },
    };
  }

  return { read };
})();
