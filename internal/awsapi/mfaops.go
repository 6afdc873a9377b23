package awsapi

import (
	"encoding/base64"

	"github.com/kaginashi/kaginashi/internal/apierr"
	"github.com/kaginashi/kaginashi/internal/iam"
	"github.com/kaginashi/kaginashi/internal/store"
)

// IAM's virtual MFA device operations (issue #6). Authorization follows
// AWS's service authorization reference: CreateVirtualMFADevice and
// DeleteVirtualMFADevice act on the device (arn:aws:iam::ACCOUNT:mfa/...),
// EnableMFADevice, DeactivateMFADevice and ListMFADevices on the user,
// ListVirtualMFADevices on "*". The user actions carry the user's tags
// (aws:ResourceTag/*, iam:ResourceTag/*) as every other user action does,
// so one attribute-based policy governs a team's keys and MFA devices.

// xmlVirtualMFADevice is IAM's VirtualMFADevice. Base32StringSeed and
// QRCodePNG are blobs: base64 on the wire (encoding/xml would write a
// []byte raw), and only in CreateVirtualMFADevice's answer.
type xmlVirtualMFADevice struct {
	SerialNumber     string   `xml:"SerialNumber"`
	Base32StringSeed string   `xml:"Base32StringSeed,omitempty"`
	QRCodePNG        string   `xml:"QRCodePNG,omitempty"`
	User             *xmlUser `xml:"User,omitempty"`
	EnableDate       string   `xml:"EnableDate,omitempty"`
	Tags             *xmlTags `xml:"Tags,omitempty"`
}

type xmlMFADevice struct {
	UserName     string `xml:"UserName"`
	SerialNumber string `xml:"SerialNumber"`
	EnableDate   string `xml:"EnableDate"`
}

// mfaUser checks the user an MFA operation names (UserName, or the
// caller's own user when it is omitted: DeactivateMFADevice,
// ListMFADevices), as authorizeTargetUser returned it. The account root
// has no MFA devices in kaginashi.
func mfaUser(u string) (string, error) {
	if u == "" {
		return "", apierr.New(apierr.InvalidInput, "UserName is required: the account root has no MFA devices here")
	}
	return u, nil
}

func addMFAOps(add func(name string, readOnly bool, run func(c *call) (any, error))) {
	add("CreateVirtualMFADevice", false, func(c *call) (any, error) {
		name, path := c.params.req("VirtualMFADeviceName"), c.params.str("Path")
		tags := c.params.tags("Tags.member", 50)
		if err := c.decoded(); err != nil {
			return nil, err
		}
		if err := checkFoldedKeys(tags); err != nil { // iamtagkeys.go
			return nil, err
		}
		p := path
		if p == "" {
			p = "/"
		}
		if err := c.authorize(iam.MFASerial(c.h.cfg.Account, p, name), requestTags(tags)); err != nil {
			return nil, err
		}
		d, err := c.iamSvc().CreateVirtualMFADevice(c.ctx, name, path, tags)
		if err != nil {
			return nil, err
		}
		c.response = map[string]any{"virtualMFADevice": map[string]any{"serialNumber": d.SerialNumber}}
		x := xmlVirtualMFADevice{
			SerialNumber:     d.SerialNumber,
			Base32StringSeed: base64.StdEncoding.EncodeToString([]byte(d.Base32Seed)),
			QRCodePNG:        base64.StdEncoding.EncodeToString(d.QRCodePNG),
		}
		if len(d.Tags) > 0 {
			x.Tags = &xmlTags{M: tagsXML(d.Tags)}
		}
		return struct {
			VirtualMFADevice xmlVirtualMFADevice `xml:"VirtualMFADevice"`
		}{x}, nil
	})
	add("EnableMFADevice", false, func(c *call) (any, error) {
		user, serial := c.params.req("UserName"), c.params.req("SerialNumber")
		code1, code2 := c.params.req("AuthenticationCode1"), c.params.req("AuthenticationCode2")
		if err := c.decoded(); err != nil {
			return nil, err
		}
		user, err := c.authorizeUser(user, nil)
		if err != nil {
			return nil, err
		}
		return nil, c.iamSvc().EnableMFADevice(c.ctx, user, serial, code1, code2)
	})
	add("DeactivateMFADevice", false, func(c *call) (any, error) {
		serial := c.params.req("SerialNumber")
		if err := c.decoded(); err != nil {
			return nil, err
		}
		user, err := c.authorizeTargetUser(nil)
		if err != nil {
			return nil, err
		}
		user, err = mfaUser(user)
		if err != nil {
			return nil, err
		}
		return nil, c.iamSvc().DeactivateMFADevice(c.ctx, user, serial)
	})
	add("DeleteVirtualMFADevice", false, func(c *call) (any, error) {
		serial := c.params.req("SerialNumber")
		if err := c.decoded(); err != nil {
			return nil, err
		}
		// The device's tags are resource tags for conditions; an unknown
		// device has none (its answer comes after authorization, so that
		// a denied caller learns nothing about it). The store finds a
		// serial number without regard to case, so a device that exists
		// is authorized on its own serial number (its ARN), not on the
		// caller's spelling of it, which would slip past a Deny on it.
		var tags []store.Tag
		switch d, err := c.iamSvc().GetVirtualMFADevice(c.ctx, serial); {
		case err == nil:
			serial, tags = d.SerialNumber, d.Tags
		case apierr.KindOf(err) != apierr.NotFound:
			return nil, err
		}
		if err := c.authorize(serial, resourceTags(tags, "aws:ResourceTag/")); err != nil {
			return nil, err
		}
		return nil, c.iamSvc().DeleteVirtualMFADevice(c.ctx, serial)
	})
	add("ListMFADevices", true, func(c *call) (any, error) {
		if err := c.decoded(); err != nil {
			return nil, err
		}
		user, err := c.authorizeTargetUser(nil)
		if err != nil {
			return nil, err
		}
		var ds []store.MFADevice
		if user != "" {
			var err error
			if ds, err = c.iamSvc().ListMFADevices(c.ctx, user); err != nil {
				return nil, err
			}
		}
		ds, truncated, marker, err := page(c, ds)
		if err != nil {
			return nil, err
		}
		out := struct {
			Devices     []xmlMFADevice `xml:"MFADevices>member"`
			IsTruncated bool           `xml:"IsTruncated"`
			Marker      string         `xml:"Marker,omitempty"`
		}{Devices: []xmlMFADevice{}, IsTruncated: truncated, Marker: marker}
		for _, d := range ds {
			out.Devices = append(out.Devices, xmlMFADevice{d.UserName, d.SerialNumber, isoTime(d.EnableDate)})
		}
		return out, nil
	})
	add("ListVirtualMFADevices", true, func(c *call) (any, error) {
		status := c.params.str("AssignmentStatus")
		if err := c.decoded(); err != nil {
			return nil, err
		}
		if err := c.authorize("*", nil); err != nil {
			return nil, err
		}
		ds, err := c.iamSvc().ListVirtualMFADevices(c.ctx, status)
		if err != nil {
			return nil, err
		}
		ds, truncated, marker, err := page(c, ds)
		if err != nil {
			return nil, err
		}
		out := struct {
			Devices     []xmlVirtualMFADevice `xml:"VirtualMFADevices>member"`
			IsTruncated bool                  `xml:"IsTruncated"`
			Marker      string                `xml:"Marker,omitempty"`
		}{Devices: []xmlVirtualMFADevice{}, IsTruncated: truncated, Marker: marker}
		for _, d := range ds {
			x := xmlVirtualMFADevice{SerialNumber: d.SerialNumber}
			if d.UserName != "" {
				if u, err := c.iamSvc().GetUser(c.ctx, d.UserName); err == nil {
					ux := c.h.userXML(u, false)
					x.User = &ux
				}
				x.EnableDate = isoTime(d.EnableDate)
			}
			if len(d.Tags) > 0 {
				x.Tags = &xmlTags{M: tagsXML(d.Tags)}
			}
			out.Devices = append(out.Devices, x)
		}
		return out, nil
	})
}
